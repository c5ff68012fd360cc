"""Electronic card tokens (DESIGN §4.8): the sandbox platform issues them, the hub's verifier accepts each once.

Logic runs against a fake clock and an in-memory store; single use also against the real SQLite ledger, and
the token command as a user runs it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from adapters import errors
from adapters.domain import CardCredential
from gateway import errors as hub_errors
from gateway.api.status import code_of
from gateway.config import DEFAULT_FILE, ConfigError, load_hub_config
from gateway.ledger import SqliteLedger
from gateway.services.ecard import TokenVerifier
from regions import ecard
from regions.config import load_regions
from regions.provisioning import provision
from regions.seed import SeededPerson, generate
from tests.conftest import YIKATONG

NOW = 1_790_000_000.0
SKEW = 5.0
FIELD = "card.ecard_token"
ROTATED_KEY = ecard.derive_key("test key 2027")


def seeded_people() -> list[SeededPerson]:
    return [p for r in load_regions() for p in generate(r.region_id, r.provinces)]


PEOPLE = seeded_people()
PERSON = next(p for p in PEOPLE if p.status is not None and p.issuing_area[:2] == "51")
CARD = ecard.credential_of(PERSON)


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeStore:
    """Used token ids in memory, with what the verifier asked to remember."""

    def __init__(self) -> None:
        self.used: dict[str, float] = {}

    async def use_token(self, token_id: str, expires_at: float, now: float) -> bool:
        if token_id in self.used:
            return False
        self.used[token_id] = expires_at
        return True


def verifier(
    store: FakeStore | SqliteLedger | None = None,
    *,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    clock: FakeClock | None = None,
    max_ttl: float = 60.0,
) -> TokenVerifier:
    return TokenVerifier(
        {ecard.SANDBOX_KEY_ID: ecard.SANDBOX_KEY.public_key()} if keys is None else keys,
        store if store is not None else FakeStore(),
        clock=clock or FakeClock(),
        skew_seconds=SKEW,
        max_ttl_seconds=max_ttl,
    )


def token(
    card: CardCredential = CARD,
    *,
    ttl_seconds: int = 60,
    key: Ed25519PrivateKey = ecard.SANDBOX_KEY,
    kid: str = ecard.SANDBOX_KEY_ID,
) -> str:
    return ecard.issue_token(card, ttl_seconds=ttl_seconds, now=NOW, key=key, kid=kid)


def claims(**changes: object) -> dict[str, object]:
    payload = decode(token())
    return {k: v for k, v in {**payload, **changes}.items() if v is not None}


def decode(value: str) -> dict[str, object]:
    body = value.split(".")[0]
    payload: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return payload


async def refused(v: TokenVerifier, value: str) -> errors.YikatongError:
    with pytest.raises(errors.YikatongError) as caught:
        await v.credential(value)
    return caught.value


# --- accepted ------------------------------------------------------------------------------------------------


async def test_a_valid_token_is_recognised_as_the_card_it_names() -> None:
    store = FakeStore()
    credential = await verifier(store).credential(token())
    assert credential == CardCredential(
        PERSON.social_security_number,
        PERSON.card_number,
        PERSON.card_identification_code,
        PERSON.issuing_area,
        PERSON.name,
    )
    assert credential.issuing_area == PERSON.card_identification_code[:6]
    # The ledger keeps the id until the last moment the token could still be accepted.
    assert list(store.used.values()) == [NOW + 60 + SKEW]


async def test_a_token_without_an_issuing_area_takes_it_from_the_identification_code() -> None:
    value = ecard.sign_payload(claims(issuing_area=""), ecard.SANDBOX_KEY)
    assert (await verifier().credential(value)).issuing_area == PERSON.card_identification_code[:6]


async def test_the_clock_skew_allowance_holds_at_both_ends() -> None:
    assert await verifier(clock=FakeClock(NOW + 60 + SKEW)).credential(token())
    assert await verifier(clock=FakeClock(NOW - SKEW)).credential(token())


async def test_a_second_key_id_is_accepted_when_configured_and_refused_once_removed() -> None:
    keys = {ecard.SANDBOX_KEY_ID: ecard.SANDBOX_KEY.public_key(), "test-2027": ROTATED_KEY.public_key()}
    rotating = verifier(keys=keys)
    assert await rotating.credential(token()) == CARD
    assert await rotating.credential(token(key=ROTATED_KEY, kid="test-2027")) == CARD
    only_new = verifier(keys={"test-2027": ROTATED_KEY.public_key()})
    assert (await refused(only_new, token())).reason == "ECARD_KEY_UNKNOWN"


# --- refused ------------------------------------------------------------------------------------------------


async def test_an_expired_token_is_refused() -> None:
    store = FakeStore()
    error = await refused(verifier(store, clock=FakeClock(NOW + 60 + SKEW + 1)), token())
    assert isinstance(error, hub_errors.ECardTokenExpired)
    assert (error.reason, error.metadata["expires_at"]) == ("ECARD_TOKEN_EXPIRED", str(int(NOW) + 60))
    assert store.used == {}


async def test_a_token_from_the_future_is_not_yet_valid() -> None:
    error = await refused(verifier(clock=FakeClock(NOW - SKEW - 1)), token())
    assert error.reason == "ECARD_TOKEN_NOT_YET_VALID"


@pytest.mark.parametrize("lifetime", [61, 0, -10])
async def test_a_token_issued_for_too_long_or_no_time_is_refused(lifetime: int) -> None:
    value = ecard.sign_payload(claims(exp=int(NOW) + lifetime), ecard.SANDBOX_KEY)
    error = await refused(verifier(clock=FakeClock(NOW)), value)
    assert (error.reason, error.metadata["lifetime_seconds"]) == ("ECARD_TOKEN_EXPIRED", str(lifetime))


async def test_the_configured_lifetime_limit_applies() -> None:
    assert (await refused(verifier(max_ttl=30), token(ttl_seconds=31))).reason == "ECARD_TOKEN_EXPIRED"
    assert await verifier(max_ttl=30).credential(token(ttl_seconds=30)) == CARD


async def test_a_tampered_payload_is_refused() -> None:
    other = next(p for p in PEOPLE if p.status is not None and p is not PERSON)
    signature = token().split(".")[1]
    forged_body = ecard.sign_payload(claims(card_number=other.card_number), ecard.SANDBOX_KEY).split(".")[0]
    store = FakeStore()
    error = await refused(verifier(store), f"{forged_body}.{signature}")
    assert (error.reason, error.metadata["key_id"]) == ("ECARD_SIGNATURE_INVALID", ecard.SANDBOX_KEY_ID)
    assert store.used == {}


async def test_a_tampered_signature_is_refused() -> None:
    body, signature = token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    error = await refused(verifier(), f"{body}.{ecard.b64url(bytes(raw))}")
    assert error.reason == "ECARD_SIGNATURE_INVALID"


async def test_a_token_signed_by_another_key_is_refused() -> None:
    stranger = Ed25519PrivateKey.generate()
    unknown = await refused(verifier(), token(key=stranger, kid="somebody-else"))
    assert (unknown.reason, unknown.metadata["key_id"]) == ("ECARD_KEY_UNKNOWN", "somebody-else")
    forged = await refused(verifier(), token(key=stranger))  # claims the sandbox key id
    assert forged.reason == "ECARD_SIGNATURE_INVALID"


async def test_a_replayed_token_is_refused() -> None:
    v, value = verifier(), token()
    assert await v.credential(value) == CARD
    error = await refused(v, value)
    assert isinstance(error, hub_errors.ECardTokenUsed)
    assert (error.reason, error.metadata["token_id"]) == ("ECARD_TOKEN_USED", decode(value)["jti"])
    assert await v.credential(token()) == CARD  # a new token of the same card is fine


def test_every_refusal_is_unauthenticated_with_its_own_reason() -> None:
    refusals = [
        hub_errors.ECardKeyUnknown("k"),
        hub_errors.ECardSignatureInvalid("k"),
        hub_errors.ECardTokenExpired("expired"),
        hub_errors.ECardTokenNotYetValid("future"),
        hub_errors.ECardTokenUsed("t"),
    ]
    assert {code_of(e) for e in refusals} == {grpc.StatusCode.UNAUTHENTICATED}
    assert len({e.reason for e in refusals}) == len(refusals)


# --- malformed ----------------------------------------------------------------------------------------------

SIGNED = token()
BODY, SIGNATURE = SIGNED.split(".")


def signed(payload: object) -> str:
    body = ecard.b64url(json.dumps(payload).encode())
    return f"{body}.{ecard.b64url(ecard.SANDBOX_KEY.sign(body.encode()))}"


MALFORMED = {
    "empty": "",
    "one part": BODY,
    "three parts": f"{SIGNED}.{SIGNATURE}",
    "empty signature": f"{BODY}.",
    "not base64url": f"{BODY[:-2]}+/.{SIGNATURE}",
    "not ascii": f"{BODY}é.{SIGNATURE}",
    "impossible length": f"AAAAA.{SIGNATURE}",
    "short signature": f"{BODY}.{SIGNATURE[:40]}",
    "not json": f"{ecard.b64url(b'kid=sandbox-2026')}.{SIGNATURE}",
    "not utf-8": f"{ecard.b64url(bytes([0xFF, 0xFE]))}.{SIGNATURE}",
    "json array": signed([1, 2]),
    "missing jti": signed(claims(jti=None)),
    "missing card number": signed(claims(card_number=None)),
    "number for a string": signed(claims(social_security_number=510107199001011234)),
    "string for a time": signed(claims(exp=str(int(NOW) + 60))),
    "bool for a time": signed(claims(iat=True)),
    "empty kid": signed(claims(kid="")),
    "too long": "A" * 3000 + "." + SIGNATURE,
}


@pytest.mark.parametrize("value", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_token_is_an_invalid_argument_naming_the_field(value: str) -> None:
    store = FakeStore()
    error = await refused(verifier(store), value)
    assert isinstance(error, errors.InvalidArgument)
    assert error.metadata["field"] == FIELD
    assert store.used == {}


def bad_card(**changes: str) -> CardCredential:
    return replace(CARD, **changes)


BAD_CARDS = {
    "social_security_number": bad_card(social_security_number=PERSON.social_security_number[:17] + "Z"),
    "card_number": bad_card(card_number=PERSON.card_number[:8] + ("1" if PERSON.card_number[8] != "1" else "2")),
    "card_identification_code": bad_card(card_identification_code=PERSON.card_identification_code.lower()),
    "issuing_area": bad_card(issuing_area="110101" if PERSON.issuing_area != "110101" else "110102"),
    "holder_name": bad_card(holder_name=""),
}


@pytest.mark.parametrize(("member", "card"), BAD_CARDS.items(), ids=BAD_CARDS.keys())
async def test_a_genuine_token_naming_an_invalid_card_is_an_invalid_argument(member: str, card: CardCredential) -> None:
    store = FakeStore()
    error = await refused(verifier(store), token(card))
    assert isinstance(error, errors.InvalidArgument)
    assert error.metadata["field"] == f"{FIELD}.{member}"
    assert store.used == {}


async def test_the_field_name_is_the_callers() -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        await verifier().credential("nonsense", field="credential.ecard_token")
    assert caught.value.field == "credential.ecard_token"


# --- the platform --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, 61])
def test_the_platform_refuses_a_lifetime_outside_one_to_sixty_seconds(ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        token(ttl_seconds=ttl)


def test_tokens_are_unique_and_fit_a_qr_code() -> None:
    first, second = token(), token()
    assert decode(first)["jti"] != decode(second)["jti"]
    assert len(first) < 600 and first.isascii()


def test_no_person_without_a_card_gets_a_credential() -> None:
    with pytest.raises(ValueError, match="no card"):
        ecard.credential_of(next(p for p in PEOPLE if p.status is None))


# --- single use in the real ledger ---------------------------------------------------------------------------


async def test_ten_concurrent_uses_of_one_token_give_exactly_one_card(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    await ledger.open()
    try:
        v, value = verifier(ledger), token()
        outcomes = await asyncio.gather(*(v.credential(value) for _ in range(10)), return_exceptions=True)
        assert outcomes.count(CARD) == 1
        assert sorted(type(o).__name__ for o in outcomes if o != CARD) == ["ECardTokenUsed"] * 9
        # Still remembered at the last moment of the skew allowance.
        late = verifier(ledger, clock=FakeClock(NOW + 60 + SKEW))
        assert (await refused(late, value)).reason == "ECARD_TOKEN_USED"
    finally:
        await ledger.close()


# --- configuration -------------------------------------------------------------------------------------------


def test_the_shipped_hub_file_trusts_the_sandbox_platform_only_by_reference(tmp_path: Path) -> None:
    configured = tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))["ecard"]["keys"]
    generated = Ed25519PrivateKey.generate()
    provision(tmp_path, load_regions(), ecard_key=generated)

    config = load_hub_config(data_dir=tmp_path)

    assert configured == {ecard.SANDBOX_KEY_ID: f"file:{ecard.PLATFORM_PUBLIC_FILE}"}
    trusted = config.ecard_keys[ecard.SANDBOX_KEY_ID]
    assert ecard.public_key_base64(trusted) == ecard.public_key_base64(generated)
    assert (config.ecard_clock_skew_seconds, config.ecard_max_ttl_seconds) == (5.0, 60.0)


def test_a_key_reference_that_names_nothing_is_a_config_error_naming_file_key_and_reference(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[ecard.keys]\nnational-1 = "file:keys/national-1.pub"\n', encoding="utf-8")
    provision(tmp_path, load_regions())  # the regions' references resolve

    with pytest.raises(ConfigError) as caught:
        load_hub_config(path, data_dir=tmp_path)

    assert (caught.value.path, caught.value.key, caught.value.value) == (
        str(path),
        "ecard.keys.national-1",
        "file:keys/national-1.pub",
    )
    assert f"{tmp_path / 'keys' / 'national-1.pub'} not found" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('[ecard.keys]\nold-key = "not base64!"', "ecard.keys.old-key"),
        (f'[ecard.keys]\nshort = "{base64.b64encode(bytes(31)).decode()}"', "ecard.keys.short"),
        ("[ecard.keys]\nnumber = 7", "ecard.keys.number"),
        ("[ecard]\nmax_ttl_seconds = 120", "ecard.max_ttl_seconds"),
        ("[ecard]\nclock_skew_seconds = -1", "ecard.clock_skew_seconds"),
        ('[ecard.keys]\nfrom-env = "env:YIKATONG_TEST_UNSET_VARIABLE"', "ecard.keys.from-env"),
        ('[ecard.keys]\nnot-a-key = "file:hub.toml"', "ecard.keys.not-a-key"),
    ],
)
def test_a_bad_ecard_setting_is_a_config_error_naming_the_key(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(line + "\n", encoding="utf-8")
    provision(tmp_path, load_regions())
    with pytest.raises(ConfigError) as caught:
        load_hub_config(path, data_dir=tmp_path)
    assert caught.value.key == key


# --- the command ---------------------------------------------------------------------------------------------


@pytest.fixture
def up_data_dir(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    """A data directory as `yikatong up` leaves it, with its generated platform key."""
    key = Ed25519PrivateKey.generate()
    provision(tmp_path, load_regions(), ecard_key=key)
    return tmp_path, key


async def test_the_token_command_signs_with_the_platform_key_up_generated(
    up_data_dir: tuple[Path, Ed25519PrivateKey],
) -> None:
    data_dir, key = up_data_dir
    command = [YIKATONG, "sandbox", "ecard-token", "--social-security-number", PERSON.social_security_number.lower()]
    process = await asyncio.create_subprocess_exec(
        *command, "--ttl-seconds", "30", "--data-dir", str(data_dir), stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    value = out.decode().strip()
    issued, expires = decode(value)["iat"], decode(value)["exp"]
    assert isinstance(issued, int) and expires == issued + 30
    now = float(issued)
    assert await verifier(keys={ecard.SANDBOX_KEY_ID: key.public_key()}, clock=FakeClock(now)).credential(value) == CARD
    with pytest.raises(hub_errors.ECardSignatureInvalid):  # the well-known key is not the one that signed it
        await verifier(clock=FakeClock(now)).credential(value)


def test_the_token_command_needs_the_platform_key_of_a_data_directory(tmp_path: Path) -> None:
    command = [YIKATONG, "sandbox", "ecard-token", "--social-security-number", PERSON.social_security_number]
    done = subprocess.run([*command, "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout) == (2, "")
    assert f"`yikatong up --data-dir {tmp_path}` generates" in done.stderr


@pytest.mark.parametrize(
    ("ssn", "problem"),
    [
        ("110101199001011237", "no sandbox person"),
        (next(p for p in PEOPLE if p.status is None).social_security_number, "no card"),
    ],
)
def test_the_token_command_refuses_an_unknown_person_or_one_without_a_card(
    up_data_dir: tuple[Path, Ed25519PrivateKey], ssn: str, problem: str
) -> None:
    command = [YIKATONG, "sandbox", "ecard-token", "--social-security-number", ssn, "--data-dir", str(up_data_dir[0])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert problem in done.stderr
