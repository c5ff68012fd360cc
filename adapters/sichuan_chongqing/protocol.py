"""What the 川渝 adapter and the region's server agree on: routes, the envelope, codes, refusals and signing.

The adapter (:mod:`adapters.sichuan_chongqing.client`) and the sandbox (:mod:`regions.sichuan_chongqing.server`)
both import this module, and :mod:`adapters.sichuan_chongqing.codec` for the JSON form of each domain object,
so that each name of the wire is written once. What each side checks stays its own: the adapter signs with
:mod:`adapters.sichuan_chongqing.signing`, the sandbox verifies with its own code
(:mod:`regions.sichuan_chongqing.signature`).

Replies share one envelope, ``{"code": "0000", "message": "...", "data": {...}}``. A code is four digits: the
HTTP status's three, then a detail digit. Card statuses travel as two-character codes (``"01"`` normal),
settlement states likewise (``"01"`` settled, ``"02"`` reversed, ``"03"`` corrected), genders as
``"M"``/``"F"``, dates as ``YYYY-MM-DD`` and times as RFC 3339. Money is integer fen in fields ending ``Fen``.

Every request carries four signing headers: :data:`PAAS_ID_HEADER`, the caller's platform id agreed with the
region; :data:`TIMESTAMP_HEADER`, unix seconds when it was signed; :data:`NONCE_HEADER`, 16 to 64 characters of
``A-Z a-z 0-9 _ -`` never used before by that caller (the hub sends 128 random bits); :data:`SIGNATURE_HEADER`,
lower-case hex HMAC-SHA256, keyed with the shared secret, of the canonical request — six lines joined by
``\n``::

    GET                                          the method, upper case
    /v2/cards/B7K334774                          the path exactly as sent, percent-encoding included
    idNo=51010119900101123X&name=%E5%BC%A0%E4%B8%89   the query: each name and value decoded, then
                                                 percent-encoded keeping only A-Z a-z 0-9 - _ . ~, the pairs
                                                 sorted by name then value and joined by & (empty: no query)
    1767225600                                   the timestamp, as in X-Timestamp
    3q2-7wT0b9-hkH0Xr5C1eA                       the nonce, as in X-Nonce
    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855   SHA-256 of the raw body, lower-case hex
                                                 (here of the empty body of a GET)

The region refuses a request whose signature does not match (401 :data:`BAD_SIGNATURE`), whose timestamp is
more than :data:`MAX_SKEW_SECONDS` from its clock (401 :data:`STALE_TIMESTAMP`), and one whose nonce it has
already accepted from that caller within the timestamp window (401 :data:`REPLAYED_NONCE`): it remembers each
nonce until the request's timestamp has left the window, after which the timestamp alone refuses it. So a captured
request can be neither sent again nor pointed at another resource (another ``msgId`` in the path) or another query.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from adapters.domain import CardStatus, Gender, OutcomeState
from adapters.jsonwire import ErrorAnswer, loads
from adapters.refusals import RefusalCodes

# --- routes (aiohttp's pattern syntax; :func:`path` fills them in) -------------------------------------------

PING = "/v2/ping"
CARD = "/v2/cards/{cardNo}"
PERSON = "/v2/persons/{idNo}"
APPLICATIONS = "/v2/applications"
LATEST_APPLICATION = "/v2/applications/latest"
STATUS_CHANGES = CARD + "/status-changes"
REPLACEMENTS = CARD + "/replacements"
FILINGS = "/v2/filings"
SETTLEMENT_PREVIEWS = "/v2/settlement-previews"
SETTLEMENTS = "/v2/settlements"
SETTLEMENT = SETTLEMENTS + "/{msgId}"
CORRECTION = SETTLEMENT + "/correction"
REVERSAL = SETTLEMENT + "/reversal"
STAND_IN_ADVICES = "/v2/stand-in-advices"
MEDICAL_PREFIXES = (FILINGS, "/v2/settlement")
"""The medical system's routes (an answer delay scoped to settlement holds back only these)."""


def path(route: str, **values: str) -> str:
    """A route with its ``{placeholders}`` filled in, each value quoted as one path segment."""
    return route.format(**{key: quote(value, safe="") for key, value in values.items()})


# --- the envelope and its codes ------------------------------------------------------------------------------

OK = "0000"
BAD_INPUT = "4000"
NO_SUCH_RESOURCE = "4049"
UNAVAILABLE = "5030"
INTERNAL = "5000"

REFUSALS: RefusalCodes[str] = RefusalCodes(
    {
        "HOLDER_MISMATCH": "4030",
        "CARD_NOT_FOUND": "4040",
        "HOLDER_NOT_FOUND": "4041",
        "APPLICATION_NOT_FOUND": "4042",
        "NOT_INSURED": "4043",
        "SETTLEMENT_NOT_FOUND": "4044",  # data: requestId
        "CARD_STATE_CONFLICT": "4090",  # data: action and status
        "CARD_ALREADY_HELD": "4091",
        "IDEMPOTENCY_KEY_REUSED": "4092",  # data: requestId
        "SETTLEMENT_NOT_SETTLED": "4093",  # data: requestId and state
        "SETTLEMENT_CORRECTED": "4094",  # data: requestId
    }
)


def http_status(code: str) -> int:
    """The HTTP status a code is answered with: its first three digits."""
    return int(code[:3])


def envelope(code: str, message: str, data: Any = None) -> dict[str, Any]:
    """One reply in the region's envelope."""
    return {"code": code, "message": message, "data": data}


def envelope_data(status: int, payload: bytes) -> Any:
    """The ``data`` of a reply whose envelope says ``0000`` with a 2xx status.

    Raises:
        ErrorAnswer: the envelope carries another code (or the HTTP status is not 2xx).
        WireError: the payload is not an envelope.
    """
    answer = loads(status, payload)
    code = answer.value("code", str)
    if code != OK or not 200 <= status < 300:
        message = answer.data.get("message")
        raise ErrorAnswer(status, code, message if isinstance(message, str) else "", answer.data.get("data"))
    return answer.data.get("data")


# --- code tables: wire code → domain member (and back) -------------------------------------------------------

STATUSES: dict[str, CardStatus] = {
    "00": CardStatus.SEALED,
    "01": CardStatus.NORMAL,
    "02": CardStatus.LOST,
    "03": CardStatus.LOCKED,
    "04": CardStatus.TEMPORARILY_LOST,
    "09": CardStatus.CANCELLED,
}
GENDERS: dict[str, Gender] = {"M": Gender.MALE, "F": Gender.FEMALE}
SETTLEMENT_STATES: dict[str, OutcomeState] = {
    "01": OutcomeState.SETTLED,
    "02": OutcomeState.REVERSED,
    "03": OutcomeState.CORRECTED,
}
STATUS_CODES = {status: code for code, status in STATUSES.items()}
GENDER_CODES = {gender: code for code, gender in GENDERS.items()}
SETTLEMENT_STATE_CODES = {state: code for code, state in SETTLEMENT_STATES.items()}

# --- signing -------------------------------------------------------------------------------------------------

PAAS_ID_HEADER = "X-Paas-Id"
TIMESTAMP_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
SIGNATURE_HEADER = "X-Signature"

NONCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
NONCE_LENGTHS = range(16, 65)
"""How long a nonce may be; its characters are :data:`NONCE_ALPHABET`'s."""

QUERY_SAFE = "-_.~"
"""Besides letters and digits, the characters the canonical query leaves unencoded (RFC 3986's unreserved)."""

MAX_SKEW_SECONDS = 300
"""How far a request's timestamp may be from the region's clock, either way."""

BAD_SIGNATURE = "4010"
"""Code of a request whose signature, platform id, timestamp or nonce is missing, malformed or wrong."""

STALE_TIMESTAMP = "4011"
"""Code of a correctly signed request whose timestamp is too far from the region's clock."""

REPLAYED_NONCE = "4012"
"""Code of a correctly signed, fresh request whose nonce the region already accepted within the window."""
