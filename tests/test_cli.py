"""The command line as a user runs it: `yikatong up` serves and self-checks; config errors name the key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.config import load_hub_config
from regions.config import ConfigError, load_region, load_regions
from regions.provisioning import provision
from tests.conftest import YIKATONG


def wait_for_line(process: subprocess.Popen[str], text: str, seconds: float = 30) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not printed; got: {lines}")


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "checks"), [((), 11), (("--insecure",), 9)], ids=["mtls", "insecure"])
def test_up_serves_the_federation_prints_the_self_check_and_stops_cleanly(
    tmp_path: Path, flags: tuple[str, ...], checks: int
) -> None:
    command = [YIKATONG, "up", "--hub-port", "0", "--admin-port", "0", "--data-dir", str(tmp_path), *flags]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as process:
        try:
            lines = wait_for_line(process, "serving")
            assert "self-check passed" in lines
            assert sum(line.strip().startswith("[ok]") for line in lines) == checks  # mTLS adds two refusals
            hub = next(line for line in lines if line.startswith("hub "))
            assert ("(mutual TLS)" in hub) is not bool(flags)
            assert lines[0].startswith("generated ") and "development files" in lines[0]  # a fresh data directory
            assert any(line.startswith("region links TLS (CA ") for line in lines)
            regions = json.loads((tmp_path / "endpoints.json").read_text())["regions"]
            assert {r: e["address"].split("://")[0] for r, e in regions.items() if "://" in e["address"]} == {
                "yangtze-delta": "https",
                "sichuan-chongqing": "https",
            }
            assert ("tls" in json.loads((tmp_path / "endpoints.json").read_text())) is not bool(flags)
            splits = [re.search(SPLIT_LINE, line) for line in lines if "yuan = fund" in line]
            assert len(splits) == 2
            for split in splits:
                assert split is not None
                total, fund, account, cash = (int(x.replace(",", "").replace(".", "")) for x in split.groups())
                assert total == fund + account + cash > 0
            check_running_federation(tmp_path)
            check_clearing_report(tmp_path, lines)
            if not flags:
                check_buf_curl(tmp_path)
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
    # The self-check's mixed workload, and the refusals, are in a chain that holds to its last signed checkpoint.
    verified = subprocess.run(
        [YIKATONG, "audit", "verify", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0 and verified.stdout.startswith("audit chain holds: "), verified.stdout
    assert int(verified.stdout.split()[3]) == 2 + (checks - 9)  # two settlements; with mTLS, two refused writes


SPLIT_LINE = r"total ([\d,.]+) yuan = fund ([\d,.]+) \+ account ([\d,.]+) \+ cash ([\d,.]+)"


def check_clearing_report(data_dir: Path, lines: list[str]) -> None:
    """The self-check's two settlements appear in the period's report: 51 → 31 and 13 → 50."""
    period = re.search(r" in (\d{4}-\d{2}): ", next(line for line in lines if "yuan = fund" in line))
    assert period is not None
    report = subprocess.run(
        [YIKATONG, "clearing", "report", "--period", period.group(1), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    assert report[0] == f"clearing period {period.group(1)} (OPEN)"
    pairs = {tuple(line.split()[:3]) for line in report if " → " in line and line.split()[0].isdigit()}
    assert pairs == {("51", "→", "31"), ("13", "→", "50")}


BUF = Path(__file__).resolve().parent.parent / ".tools" / "buf" / "node_modules" / ".bin" / "buf"


def check_buf_curl(data_dir: Path) -> None:
    """The README's `buf curl`: a Shanghai hospital verifies a Sichuan card, with the files endpoints.json names."""
    if not BUF.exists():
        if os.environ.get("YIKATONG_REQUIRE_BUF"):
            raise AssertionError(f"no buf at {BUF}: `make buf` installs it")
        return  # a laptop without npm: the rest of the test still ran; CI requires it
    endpoints = json.loads((data_dir / "endpoints.json").read_text())
    hospital = endpoints["tls"]["participants"]["hospital-shanghai-xuhui"]
    card = json.loads(
        subprocess.run(
            [YIKATONG, "sandbox", "cards", "--region", "sichuan-chongqing", "--status", "NORMAL", "--limit", "1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    )
    request = {
        "card": {k: card[k] for k in ("social_security_number", "card_number", "card_identification_code")},
        "venue": {"area_code": "310104"},
    }
    answer = subprocess.run(
        [str(BUF), "curl", "--protocol", "grpc", "--cacert", endpoints["tls"]["ca"], "--cert", hospital["cert"],
         "--key", hospital["key"], "-d", json.dumps(request),
         f"https://{endpoints['hub']}/yikatong.v1.CardService/VerifyCard"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    verified = json.loads(answer.stdout)
    assert (verified["issuingRegion"], verified["card"]["status"]) == ("sichuan-chongqing", "CARD_STATUS_NORMAL")


def check_running_federation(data_dir: Path) -> None:
    endpoints = json.loads((data_dir / "endpoints.json").read_text())
    assert set(endpoints["regions"]) == {"yangtze-delta", "sichuan-chongqing", "beijing-tianjin-hebei"}
    with urllib.request.urlopen(endpoints["admin"] + "/healthz", timeout=5) as reply:
        assert json.loads(reply.read()) == {"status": "alive"}
    with urllib.request.urlopen(endpoints["admin"] + "/readyz", timeout=5) as reply:
        assert json.loads(reply.read())["ready"] is True
    fault = subprocess.run(
        [YIKATONG, "sandbox", "fault", "--data-dir", str(data_dir), "--region", "yangtze-delta", "--down"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert fault.returncode == 0 and json.loads(fault.stdout)["down"] is True


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--host", "0.0.0.0", "--insecure"), "plaintext is refused off loopback"),
        ((), "yikatong pki init"),  # mutual TLS by default: without the PKI's files it does not start
    ],
    ids=["insecure-off-loopback", "no-pki"],
)
def test_serve_refuses_plaintext_off_loopback_and_tls_without_its_files(
    tmp_path: Path, flags: tuple[str, ...], said: str
) -> None:
    provision(tmp_path, load_regions())  # the secrets the configuration references are there; the hub's PKI is not
    served = subprocess.run(
        [YIKATONG, "serve", "--data-dir", str(tmp_path), "--port", "0", "--admin-port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert served.returncode == 2 and said in served.stderr


def test_sandbox_cards_lists_real_cards_with_the_fields_of_the_design() -> None:
    out = subprocess.run(
        [YIKATONG, "sandbox", "cards", "--region", "beijing-tianjin-hebei", "--status", "LOCKED", "--limit", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "LOCKED" and row["region"] == "beijing-tianjin-hebei"
        assert row["issuing_area"][:2] in {"11", "12", "13"}
        assert row["card_identification_code"][:6] == row["issuing_area"]


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('id = "x"\n', "id", "lower-case"),
        ('id = "r1"\nname = "R"\nprovinces = ["9"]\nadapter = "a"\nendpoint = "e"\n', "provinces[0]", "two-digit"),
        ('id = "r1"\nname = "R"\nprovinces = ["51"]\nadapter = "a"\n', "endpoint", "required"),
        (
            'id = "r1"\nname = "R"\nprovinces = ["51"]\nadapter = "a"\nendpoint = "e"\n[sandbox]\nstage_seconds = -1\n',
            "sandbox.stage_seconds",
            "greater than 0",
        ),
    ],
)
def test_a_bad_region_file_is_refused_naming_file_key_and_value(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_region(path)
    assert error.value.key == key
    assert str(path) in str(error.value) and problem in str(error.value)


def test_a_bad_hub_file_is_refused_naming_the_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[server]\nport = 70000\n")
    with pytest.raises(ConfigError) as error:
        load_hub_config(path, data_dir=tmp_path)
    assert error.value.key == "server.port" and error.value.value == 70000


def test_the_command_reports_a_configuration_error_instead_of_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[server]\nadmin_port = 'x'\n")
    result = subprocess.run(
        [YIKATONG, "serve", "--config", str(path), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "server.admin_port" in result.stderr and "Traceback" not in result.stderr


def test_sandbox_policy_prints_the_four_rows_of_a_province() -> None:
    out = subprocess.run(
        [YIKATONG, "sandbox", "policy", "--province", "51"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert {(r["insurance_type"], r["visit_type"]) for r in rows} == {
        ("EMPLOYEE", "INPATIENT"),
        ("EMPLOYEE", "OUTPATIENT"),
        ("RESIDENT", "INPATIENT"),
        ("RESIDENT", "OUTPATIENT"),
    }
    assert all(r["province"] == "51" and set(r["ratio_bp"]) == {"1", "2", "3"} for r in rows)
    assert set(rows[0]) == {
        "province",
        "insurance_type",
        "visit_type",
        "deductible_first_fen",
        "deductible_later_fen",
        "ratio_bp",
        "annual_cap_fen",
        "b_class_self_pay_bp",
        "unfiled_penalty_bp",
        "temporary_filing_penalty_bp",
    }
