"""Clearing bookings and closed periods (DESIGN §4.6)."""

from __future__ import annotations

from gateway.ledger.records import Booking
from gateway.ledger.worker import Db
from gateway.periods import next_period, period_of


def open_period(db: Db, now: float) -> str:
    """The period a booking made now lands in: this month, or the first later month not closed."""
    period = period_of(now)
    rows = db.execute("SELECT period FROM clearing_periods WHERE period >= ?", (period,)).fetchall()
    closed = {row[0] for row in rows}
    while period in closed:
        period = next_period(period)
    return period


def add_to_totals(db: Db, period: str, insured: str, treatment: str, count: int, fund_pay_fen: int) -> None:
    """Add a booking to its period's pair totals (in the booking's transaction)."""
    db.execute(
        "INSERT INTO clearing_totals VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (period, insured_province, treatment_province) DO UPDATE SET "
        "count = clearing_totals.count + excluded.count, "
        "fund_pay_fen = clearing_totals.fund_pay_fen + excluded.fund_pay_fen",
        (period, insured, treatment, count, fund_pay_fen),
    )


def totals(db: Db, period: str) -> list[tuple[str, str, int, int]]:
    """``(insured province, treatment province, count, fund fen)`` of every pair with bookings in the period."""
    rows = db.execute(
        "SELECT insured_province, treatment_province, count, fund_pay_fen FROM clearing_totals WHERE period = ? "
        "ORDER BY insured_province, treatment_province",
        (period,),
    ).fetchall()
    return [(str(i), str(t), int(c), int(f)) for i, t, c, f in rows]


def bookings_on(db: Db, day: str, treatment_area: str, participant: str | None) -> list[Booking]:
    """The bookings of a day for an area, or for a whole province when the area is ``XX0000``; only those of
    ``participant``'s settlements unless it is None."""
    province, whole = treatment_area[:2], treatment_area.endswith("0000")
    rows = db.execute(
        "SELECT * FROM bookings WHERE booked_on = ? AND treatment_province = ? "
        "AND (? OR treatment_area = ?) AND (? OR participant = ?) ORDER BY settlement_id, kind",
        (day, province, whole, treatment_area, participant is None, participant or ""),
    ).fetchall()
    return [Booking(*row) for row in rows]


def closed_report(db: Db, period: str) -> str | None:
    """The frozen report of a closed period, None while it is open."""
    row = db.execute("SELECT report FROM clearing_periods WHERE period = ?", (period,)).fetchone()
    return str(row[0]) if row else None


def close_period(db: Db, period: str, report: str, now: float) -> str:
    """Freeze a period with its report; closing a closed period returns what was frozen."""
    db.execute(
        "INSERT INTO clearing_periods VALUES (?, 'CLOSED', ?, ?) ON CONFLICT (period) DO NOTHING",
        (period, now, report),
    )
    return str(db.execute("SELECT report FROM clearing_periods WHERE period = ?", (period,)).fetchone()[0])
