"""Secrets out of the repository (issue 13, item 3): references resolved at start, generated for development,
refused when they are the sandbox's unless ``--dev``, and never printed."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import tomllib
import urllib.request
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.domain import CardStatus
from adapters.interface import AdapterSettings
from gateway import pki
from gateway.config import DEFAULT_FILE, load_hub_config
from gateway.hub import check_secrets
from gateway.participants import PARTICIPANTS_FILE
from regions import ecard
from regions.agreements import AGREEMENTS_FILE
from regions.config import CONFIG_DIR, ConfigError, load_region, load_regions
from regions.provisioning import Links, provision
from regions.secrets import PUBLISHED, Secret, resolve, resolve_region
from tests.conftest import YIKATONG, Federation, credential
from yikatong.v1 import card_pb2, common_pb2

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [*sorted(CONFIG_DIR.glob("*.toml")), *sorted((ROOT / "examples").glob("*/config/*.toml"))]
SC = CONFIG_DIR / "sichuan-chongqing.toml"


# --- references ---------------------------------------------------------------------------------------------


def test_a_reference_resolves_to_what_it_names_and_prints_as_stars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "s").write_text("from-a-file\n")
    (tmp_path / "abs").write_text("absolute\r\n")
    monkeypatch.setenv("YIKATONG_TEST_SECRET", "from-the-environment")

    def value(text: str) -> str:
        return resolve(text, data_dir=tmp_path, source="f.toml", key="options.k")

    assert value("file:secrets/s") == "from-a-file"
    assert value(f"file:{tmp_path / 'abs'}") == "absolute"
    assert value("env:YIKATONG_TEST_SECRET") == "from-the-environment"
    assert value("plain") == "plain" and type(value("plain")) is str
    assert repr(value("file:secrets/s")) == "Secret('***')"
    assert f"{value('file:secrets/s')!r}" == "Secret('***')" and f"{value('file:secrets/s')}" == "from-a-file"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("env:YIKATONG_TEST_UNSET", "the environment variable YIKATONG_TEST_UNSET is not set"),
        ("file:secrets/missing", "secrets/missing not found (`yikatong up --data-dir"),
        ("file:secrets/empty", "secrets/empty is empty"),
    ],
)
def test_a_reference_that_names_nothing_names_file_key_and_reference(
    tmp_path: Path, reference: str, problem: str
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "empty").write_text("\n")
    region = tmp_path / "r.toml"
    region.write_text(SC.read_text().replace('"file:secrets/sichuan-chongqing.secret"', f'"{reference}"'))
    provision(tmp_path, [])

    with pytest.raises(ConfigError) as caught:
        resolve_region(load_region(region), tmp_path)

    assert (caught.value.path, caught.value.key, caught.value.value) == (str(region), "options.secret", reference)
    assert problem in str(caught.value)


def test_the_shipped_configuration_holds_references_and_no_published_secret() -> None:
    texts = {path: path.read_text(encoding="utf-8") for path in [*SHIPPED, DEFAULT_FILE]}
    for path, text in texts.items():
        for value in PUBLISHED:
            assert value not in text, path
    for path in SHIPPED:
        options = tomllib.loads(texts[path])["options"]
        credentials = {k: v for k, v in options.items() if k in {"secret", "api_key"} or k.startswith("tls_")}
        assert credentials and all(v.startswith("file:") for v in credentials.values()), path
    assert set(tomllib.loads(texts[DEFAULT_FILE])["ecard"]["keys"].values()) == {"file:secrets/ecard-platform.pub"}


def test_provisioning_writes_owner_only_secrets_and_keeps_what_exists(tmp_path: Path) -> None:
    regions = load_regions()
    written = provision(tmp_path, regions)
    secret = tmp_path / "secrets" / "sichuan-chongqing.secret"
    first = secret.read_text()

    again = provision(tmp_path, regions)

    assert secret in written and again == []
    assert secret.read_text() == first and len(first.strip()) >= 43  # 256 random bits, base64url
    for path in (secret, tmp_path / ecard.PLATFORM_KEY_FILE, Links(tmp_path).hub_client.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for region in regions:
        assert Links(tmp_path).sandbox(region.region_id).exists
    other = tmp_path / "other"
    provision(other, regions)
    assert (other / "secrets" / "sichuan-chongqing.secret").read_text() != first


def test_no_repr_shows_a_secret(data_dir: Path) -> None:
    config = load_hub_config(data_dir=data_dir)
    secret = (data_dir / "secrets" / "sichuan-chongqing.secret").read_text().strip()
    key = Links(data_dir).hub_client.key.read_text().splitlines()[1]  # a line of the hub's private key
    settings = [AdapterSettings(r.region_id, r.endpoint, dict(r.options)) for r in config.regions]
    by_id = {r.region_id: r for r in config.regions}

    assert by_id["sichuan-chongqing"].options["secret"] == secret and key in by_id["yangtze-delta"].options["tls_key"]
    shown = [repr(config), *map(repr, config.regions), *map(str, config.regions), *map(repr, settings)]
    for text in shown:
        assert secret not in text and key not in text and "PRIVATE KEY" not in text
    assert "'secret': '***'" in repr(settings[1]) and "'tls_key': '***'" in repr(settings[2])
    assert "'file:secrets/sichuan-chongqing.secret'" in repr(load_region(SC))  # a reference may show


async def test_no_log_line_or_metric_shows_a_secret(
    federation: Federation, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [
        (data_dir / "secrets" / "sichuan-chongqing.secret").read_text().strip(),
        *Links(data_dir).hub_client.key.read_text().splitlines()[1:-1],
    ]
    person = federation.pick("sichuan-chongqing", lambda p: p.status is CardStatus.NORMAL)
    request = card_pb2.VerifyCardRequest(card=credential(person), venue=common_pb2.Venue(area_code="310104"))
    with caplog.at_level(logging.DEBUG):
        answer = await federation.cards.VerifyCard(request, timeout=5)  # a signed call over TLS
        await federation.hub.federation.probe()
        async with aiohttp.ClientSession() as http, http.get(federation.hub.admin_url + "/metrics") as reply:
            metrics = await reply.text()

    assert answer.issuing_region == "sichuan-chongqing" and caplog.records and "sichuan-chongqing" in metrics
    for secret in secrets:
        assert secret not in caplog.text and secret not in metrics


# --- refused unless --dev -----------------------------------------------------------------------------------


def test_sandbox_keys_and_published_secrets_are_refused_unless_dev(data_dir: Path) -> None:
    config = load_hub_config(data_dir=data_dir)  # trusts the well-known sandbox key (the tests' data dir)
    sc = next(r for r in config.regions if r.region_id == "sichuan-chongqing")
    published = replace(sc, options={**sc.options, "secret": Secret("sandbox-shared-secret-chuanyu")})
    national = Ed25519PrivateKey.generate().public_key()
    generated = Ed25519PrivateKey.generate()
    ecard.save_platform_key(data_dir, generated)  # as `yikatong up` leaves it

    with pytest.raises(ConfigError) as well_known:
        check_secrets(config)
    with pytest.raises(ConfigError) as up_generated:
        check_secrets(replace(config, ecard_keys={"sandbox-2026": generated.public_key()}))
    with pytest.raises(ConfigError) as secret:
        check_secrets(replace(config, ecard_keys={"national-1": national}, regions=(published,)))
    check_secrets(replace(config, dev=True))
    check_secrets(replace(config, ecard_keys={"national-1": national}))

    assert (well_known.value.path, well_known.value.key) == (str(DEFAULT_FILE), "ecard.keys.sandbox-2026")
    assert "is a sandbox e-card platform key" in str(well_known.value) and "--dev" in str(well_known.value)
    assert up_generated.value.key == "ecard.keys.sandbox-2026"
    assert (secret.value.path, secret.value.key) == (str(SC), "options.secret")
    assert "sandbox-shared-secret-chuanyu" not in str(secret.value)


@pytest.fixture
def up_data_dir(tmp_path: Path) -> Path:
    """A data directory as `yikatong up` leaves it: development PKI, secrets and a generated e-card platform key."""
    provision(tmp_path, load_regions())
    pki.init(tmp_path / "pki", [])
    return tmp_path


def serve(data_dir: Path, *flags: str) -> subprocess.Popen[str]:
    command = [YIKATONG, "serve", "--data-dir", str(data_dir), "--port", "0", "--admin-port", "0", *flags]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_serve_with_the_shipped_hub_file_refuses_the_sandbox_ecard_key_without_dev(up_data_dir: Path) -> None:
    with serve(up_data_dir) as process:
        _, stderr = process.communicate(timeout=60)

    assert process.returncode == 2
    assert stderr.strip() == (
        f"configuration error: {DEFAULT_FILE}: ecard.keys.sandbox-2026 = "
        f"'{ecard.public_key_base64(ecard.load_platform_key(up_data_dir) or ecard.SANDBOX_KEY)}': "
        "is a sandbox e-card platform key (from the published seed, or generated by `yikatong up`): whoever holds it "
        "can mint tokens for any card. Trust the national platform's keys, or pass --dev"
    )


@pytest.mark.parametrize("how", ["national keys by file: reference", "--dev"])
def test_serve_serves_with_the_national_keys_by_file_reference_or_with_dev(up_data_dir: Path, how: str) -> None:
    national = up_data_dir / "national"
    national.mkdir()
    (national / "platform-1.pub").write_text(ecard.public_key_base64(Ed25519PrivateKey.generate()) + "\n")
    hub_file = up_data_dir / "hub.toml"
    shipped = DEFAULT_FILE.read_text(encoding="utf-8")
    hub_file.write_text(
        shipped.replace(
            'sandbox-2026 = "file:secrets/ecard-platform.pub"', 'national-1 = "file:national/platform-1.pub"'
        )
        .replace('file = "participants.toml"', f'file = "{PARTICIPANTS_FILE}"')
        .replace('agreements_file = "../regions/agreements.toml"', f'agreements_file = "{AGREEMENTS_FILE}"')
    )
    flags = ("--dev",) if how == "--dev" else ("--config", str(hub_file))

    with serve(up_data_dir, *flags) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            with urllib.request.urlopen(line.split()[-1] + "/healthz", timeout=10) as alive:  # serving, not starting
                assert alive.status == 200
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)

    assert line.startswith("hub gRPC 127.0.0.1:"), process.stderr.read() if process.stderr else ""
    assert process.returncode == 0


def test_the_ledger_password_is_a_reference_never_the_password(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub_file = data_dir / "hub.toml"
    shipped = DEFAULT_FILE.read_text().replace('file = "participants.toml"', f'file = "{PARTICIPANTS_FILE}"')
    shipped = shipped.replace(
        'agreements_file = "../regions/agreements.toml"', f'agreements_file = "{AGREEMENTS_FILE}"'
    )
    with_password = shipped.replace('path = "ledger.sqlite3"', 'path = "ledger.sqlite3"\npassword = "{}"', 1)

    monkeypatch.setenv("YIKATONG_LEDGER_PASSWORD", "s3cret-from-env")
    hub_file.write_text(with_password.format("env:YIKATONG_LEDGER_PASSWORD"))
    config = load_hub_config(hub_file, data_dir=data_dir)
    assert config.ledger_password == "s3cret-from-env" and "s3cret" not in repr(config)

    hub_file.write_text(with_password.format("hunter2"))
    with pytest.raises(ConfigError) as written_out:
        load_hub_config(hub_file, data_dir=data_dir)
    assert "ledger.password" in str(written_out.value) and "hunter2" not in str(written_out.value)
