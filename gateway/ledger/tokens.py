"""E-card tokens already used (DESIGN §4.8): single use, across restarts (and replicas)."""

from __future__ import annotations

from gateway.ledger.worker import Db


def use_token(db: Db, token_id: str, expires_at: float, now: float) -> bool:
    """Mark a token used; False when it was used before. Tokens past their expiry are forgotten."""
    db.execute("DELETE FROM ecard_tokens WHERE expires_at < ?", (now,))
    inserted = db.execute(
        "INSERT INTO ecard_tokens VALUES (?, ?) ON CONFLICT (token_id) DO NOTHING", (token_id, expires_at)
    ).rowcount
    return bool(inserted)
