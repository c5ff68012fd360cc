"""The ledger's schema, as numbered migrations: ``MIGRATIONS[i]`` takes version ``i`` to ``i + 1``.

A migration runs once, in order, inside a transaction. Never edit a migration that has shipped; add one.
The SQL is the common subset of SQLite and PostgreSQL so that both stores share it.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: idempotency records of every write (DESIGN §6).
    """
    CREATE TABLE idempotency (
        request_id  TEXT NOT NULL,
        method      TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
        started_at  REAL NOT NULL,
        outcome     BLOB,
        PRIMARY KEY (method, request_id)
    );
    """,
    # 2: settlements, their clearing bookings, the durable outbox and the clearing periods (DESIGN §4.5, §4.6).
    """
    CREATE TABLE settlements (
        settlement_id          TEXT PRIMARY KEY,
        request_id             TEXT NOT NULL UNIQUE,
        state                  TEXT NOT NULL CHECK (state IN
                                   ('PENDING', 'SETTLED', 'REVERSED', 'CORRECTION_PENDING', 'CORRECTED')),
        social_security_number TEXT NOT NULL,
        insured_area           TEXT NOT NULL,
        treatment_area         TEXT NOT NULL,
        insured_region         TEXT NOT NULL,
        institution_id         TEXT NOT NULL,
        visit_type             TEXT NOT NULL,
        hospital_level         INTEGER NOT NULL,
        region_settlement_id   TEXT NOT NULL DEFAULT '',
        split                  TEXT NOT NULL DEFAULT '',
        fund_pay_fen           INTEGER NOT NULL DEFAULT 0,
        created_at             REAL NOT NULL,
        settled_at             REAL,
        period                 TEXT NOT NULL DEFAULT '',
        reversed_at            REAL,
        reversal_period        TEXT NOT NULL DEFAULT '',
        void_reason            TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX settlements_by_state ON settlements (state);
    CREATE TABLE bookings (
        settlement_id      TEXT NOT NULL REFERENCES settlements (settlement_id),
        kind               TEXT NOT NULL CHECK (kind IN ('SETTLE', 'REVERSE')),
        period             TEXT NOT NULL,
        booked_on          TEXT NOT NULL,
        insured_province   TEXT NOT NULL,
        treatment_province TEXT NOT NULL,
        treatment_area     TEXT NOT NULL,
        count              INTEGER NOT NULL,
        fund_pay_fen       INTEGER NOT NULL,
        PRIMARY KEY (settlement_id, kind)
    );
    CREATE INDEX bookings_by_period ON bookings (period);
    CREATE INDEX bookings_by_day ON bookings (booked_on, treatment_province);
    CREATE TABLE outbox (
        kind            TEXT NOT NULL,
        item_key        TEXT NOT NULL,
        region          TEXT NOT NULL,
        payload         TEXT NOT NULL DEFAULT '',
        created_at      REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT NOT NULL DEFAULT '',
        delivered_at    REAL,
        PRIMARY KEY (kind, item_key)
    );
    CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
    CREATE TABLE clearing_periods (
        period    TEXT PRIMARY KEY,
        state     TEXT NOT NULL CHECK (state IN ('CLOSED')),
        closed_at REAL NOT NULL,
        report    TEXT NOT NULL
    );
    """,
    # 3: e-card tokens already used (DESIGN §4.8): single use, across restarts and replicas.
    """
    CREATE TABLE ecard_tokens (
        token_id   TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    CREATE INDEX ecard_tokens_by_expiry ON ecard_tokens (expires_at);
    """,
    # 4: participants (DESIGN §10). Idempotency keys are per participant; a settlement records who settled it,
    # its request id is unique per participant, and the id the region sees (message id) is kept beside it.
    # Tables are rebuilt (new, copy, drop, rename), the one way to change keys that SQLite and PostgreSQL share.
    # Idempotency records of the earlier format (protobuf answers) are not carried over: a retry of such a request
    # reaches the region again, which deduplicates on its message id.
    """
    CREATE TABLE idempotency_v4 (
        participant TEXT NOT NULL,
        method      TEXT NOT NULL,
        request_id  TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
        started_at  REAL NOT NULL,
        outcome     BLOB,
        PRIMARY KEY (participant, method, request_id)
    );
    DROP TABLE idempotency;
    ALTER TABLE idempotency_v4 RENAME TO idempotency;
    CREATE TABLE settlements_v4 (
        settlement_id          TEXT PRIMARY KEY,
        participant            TEXT NOT NULL,
        request_id             TEXT NOT NULL,
        region_request_id      TEXT NOT NULL UNIQUE,
        state                  TEXT NOT NULL CHECK (state IN
                                   ('PENDING', 'SETTLED', 'REVERSED', 'CORRECTION_PENDING', 'CORRECTED')),
        social_security_number TEXT NOT NULL,
        insured_area           TEXT NOT NULL,
        treatment_area         TEXT NOT NULL,
        insured_region         TEXT NOT NULL,
        institution_id         TEXT NOT NULL,
        visit_type             TEXT NOT NULL,
        hospital_level         INTEGER NOT NULL,
        region_settlement_id   TEXT NOT NULL DEFAULT '',
        split                  TEXT NOT NULL DEFAULT '',
        fund_pay_fen           INTEGER NOT NULL DEFAULT 0,
        created_at             REAL NOT NULL,
        settled_at             REAL,
        period                 TEXT NOT NULL DEFAULT '',
        reversed_at            REAL,
        reversal_period        TEXT NOT NULL DEFAULT '',
        void_reason            TEXT NOT NULL DEFAULT '',
        UNIQUE (participant, request_id)
    );
    INSERT INTO settlements_v4
        SELECT settlement_id, 'dev', request_id, request_id, state, social_security_number, insured_area,
               treatment_area, insured_region, institution_id, visit_type, hospital_level, region_settlement_id,
               split, fund_pay_fen, created_at, settled_at, period, reversed_at, reversal_period, void_reason
        FROM settlements;
    CREATE TABLE bookings_v4 (
        settlement_id      TEXT NOT NULL REFERENCES settlements_v4 (settlement_id),
        kind               TEXT NOT NULL CHECK (kind IN ('SETTLE', 'REVERSE')),
        period             TEXT NOT NULL,
        booked_on          TEXT NOT NULL,
        insured_province   TEXT NOT NULL,
        treatment_province TEXT NOT NULL,
        treatment_area     TEXT NOT NULL,
        count              INTEGER NOT NULL,
        fund_pay_fen       INTEGER NOT NULL,
        participant        TEXT NOT NULL,
        PRIMARY KEY (settlement_id, kind)
    );
    INSERT INTO bookings_v4
        SELECT settlement_id, kind, period, booked_on, insured_province, treatment_province, treatment_area, count,
               fund_pay_fen, 'dev'
        FROM bookings;
    DROP TABLE bookings;
    DROP TABLE settlements;
    ALTER TABLE settlements_v4 RENAME TO settlements;
    ALTER TABLE bookings_v4 RENAME TO bookings;
    CREATE INDEX settlements_by_state ON settlements (state);
    CREATE INDEX bookings_by_period ON bookings (period);
    CREATE INDEX bookings_by_day ON bookings (booked_on, treatment_province);
    """,
    # 5: money safety (issue 12). A reversal's intent (REVERSING, with its message id) is written before the region
    # is asked; a settlement remembers the bill's total (to check a split found later) and whose it is (a keyed
    # hash of the SSN, for corrections before that person's next settlement); updated_at dates the last change,
    # for the sweeper's lease. Clearing totals per pair are kept at booking time. The outbox gets a priority
    # (corrections and reversals before stand-in advices).
    """
    CREATE TABLE settlements_v5 (
        settlement_id          TEXT PRIMARY KEY,
        participant            TEXT NOT NULL,
        request_id             TEXT NOT NULL,
        region_request_id      TEXT NOT NULL UNIQUE,
        state                  TEXT NOT NULL CHECK (state IN
                                   ('PENDING', 'SETTLED', 'REVERSING', 'REVERSED', 'CORRECTION_PENDING', 'CORRECTED')),
        social_security_number TEXT NOT NULL,
        insured_area           TEXT NOT NULL,
        treatment_area         TEXT NOT NULL,
        insured_region         TEXT NOT NULL,
        institution_id         TEXT NOT NULL,
        visit_type             TEXT NOT NULL,
        hospital_level         INTEGER NOT NULL,
        region_settlement_id   TEXT NOT NULL DEFAULT '',
        split                  TEXT NOT NULL DEFAULT '',
        fund_pay_fen           INTEGER NOT NULL DEFAULT 0,
        created_at             REAL NOT NULL,
        settled_at             REAL,
        period                 TEXT NOT NULL DEFAULT '',
        reversed_at            REAL,
        reversal_period        TEXT NOT NULL DEFAULT '',
        void_reason            TEXT NOT NULL DEFAULT '',
        bill_total_fen         INTEGER NOT NULL DEFAULT 0,
        person_key             TEXT NOT NULL DEFAULT '',
        reversal_request_id    TEXT NOT NULL DEFAULT '',
        reversal_reason        TEXT NOT NULL DEFAULT '',
        updated_at             REAL NOT NULL DEFAULT 0,
        UNIQUE (participant, request_id)
    );
    INSERT INTO settlements_v5
        SELECT settlement_id, participant, request_id, region_request_id, state, social_security_number, insured_area,
               treatment_area, insured_region, institution_id, visit_type, hospital_level, region_settlement_id,
               split, fund_pay_fen, created_at, settled_at, period, reversed_at, reversal_period, void_reason,
               0, '', '', '', created_at
        FROM settlements;
    CREATE TABLE bookings_v5 (
        settlement_id      TEXT NOT NULL REFERENCES settlements_v5 (settlement_id),
        kind               TEXT NOT NULL CHECK (kind IN ('SETTLE', 'REVERSE')),
        period             TEXT NOT NULL,
        booked_on          TEXT NOT NULL,
        insured_province   TEXT NOT NULL,
        treatment_province TEXT NOT NULL,
        treatment_area     TEXT NOT NULL,
        count              INTEGER NOT NULL,
        fund_pay_fen       INTEGER NOT NULL,
        participant        TEXT NOT NULL,
        PRIMARY KEY (settlement_id, kind)
    );
    INSERT INTO bookings_v5 SELECT * FROM bookings;
    DROP TABLE bookings;
    DROP TABLE settlements;
    ALTER TABLE settlements_v5 RENAME TO settlements;
    ALTER TABLE bookings_v5 RENAME TO bookings;
    CREATE INDEX settlements_by_state ON settlements (state, updated_at);
    CREATE INDEX settlements_by_person ON settlements (person_key, insured_region, state);
    CREATE INDEX settlements_by_reversal ON settlements (reversal_request_id);
    CREATE INDEX bookings_by_period ON bookings (period);
    CREATE INDEX bookings_by_day ON bookings (booked_on, treatment_province);
    CREATE TABLE clearing_totals (
        period             TEXT NOT NULL,
        insured_province   TEXT NOT NULL,
        treatment_province TEXT NOT NULL,
        count              INTEGER NOT NULL,
        fund_pay_fen       INTEGER NOT NULL,
        PRIMARY KEY (period, insured_province, treatment_province)
    );
    INSERT INTO clearing_totals
        SELECT period, insured_province, treatment_province, SUM(count), SUM(fund_pay_fen)
        FROM bookings GROUP BY period, insured_province, treatment_province;
    ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
    UPDATE outbox SET priority = 0 WHERE kind = 'CORRECTION';
    CREATE INDEX outbox_by_region ON outbox (delivered_at, region, priority, next_attempt_at);
    CREATE INDEX outbox_delivered ON outbox (delivered_at);
    CREATE INDEX idempotency_by_age ON idempotency (state, started_at);
    """,
    # 6: evidence (issue 13). The audit chain and its signed checkpoints; the SSN a settlement keeps (to send a
    # reversal) is sealed with AES-GCM, never in clear, so its column says so.
    """
    CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY,
        at          REAL NOT NULL,
        participant TEXT NOT NULL,
        method      TEXT NOT NULL,
        request_id  TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        reason      TEXT NOT NULL,
        objects     TEXT NOT NULL,
        amounts     TEXT NOT NULL,
        persons     TEXT NOT NULL,
        prev        TEXT NOT NULL,
        hash        TEXT NOT NULL
    );
    CREATE TABLE audit_checkpoints (
        seq       INTEGER PRIMARY KEY,
        head      TEXT NOT NULL,
        at        REAL NOT NULL,
        key_id    TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    ALTER TABLE settlements RENAME COLUMN social_security_number TO sealed_ssn;
    """,
    # 7: several replicas (issue 15). Outbox items and unresolved settlements are claimed for a while by the replica
    # that works on them (its name and the end of its lease), so that no two replicas deliver or resolve the same
    # one, and a dead replica's work is taken over once its lease is over.
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN claim_until REAL NOT NULL DEFAULT 0;
    ALTER TABLE settlements ADD COLUMN leased_by TEXT NOT NULL DEFAULT '';
    """,
)
