"""``yikatong adapter new``: an installable adapter package that the hub finds at once and the suite fails by rule.

The slow test does what a partner does: scaffold, ``pip install`` (into a folder, with no network), list the
installed adapters, and run the conformance suite against the unimplemented adapter.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from adapters import AdapterSettings, RegionAdapter
from adapters.conformance import rules
from adapters.registry import AdapterRegistry
from adapters.scaffold import ScaffoldError, package_names, scaffold
from gateway.cli import main
from regions.config import CONFIG_DIR, load_region
from regions.sandbox import build_backend

BIN = Path(sys.executable).parent
NAME = "greater-bay"


def test_names_are_derived_from_the_adapter_name_and_bad_names_refused() -> None:
    assert package_names("greater-bay2") == {
        "name": "greater-bay2",
        "title": "Greater Bay2",
        "distribution": "yikatong-adapter-greater-bay2",
        "package": "yikatong_adapter_greater_bay2",
        "class": "GreaterBay2Adapter",
    }
    for bad in ("Greater-Bay", "greater_bay", "2bay", "bay-", "bay--area", "b", "a" * 41, "bay area", ""):
        with pytest.raises(ScaffoldError, match="lower-case letters"):
            package_names(bad)


def test_the_package_has_every_file_with_every_placeholder_filled(tmp_path: Path) -> None:
    made = scaffold(NAME, tmp_path)

    assert made.root == tmp_path / "yikatong-adapter-greater-bay"
    assert sorted(str(p) for p in made.files) == [
        "README.md",
        "config/greater-bay.toml",
        "config/policy/greater-bay.toml",
        "pyproject.toml",
        "tests/test_conformance.py",
        "yikatong_adapter_greater_bay/__init__.py",
        "yikatong_adapter_greater_bay/adapter.py",
        "yikatong_adapter_greater_bay/client.py",
        "yikatong_adapter_greater_bay/protocol.py",
        "yikatong_adapter_greater_bay/py.typed",
        "yikatong_adapter_greater_bay/sandbox.py",
    ]
    for path in made.files:
        assert "{{" not in (made.root / path).read_text(encoding="utf-8"), path
    project = tomllib.loads((made.root / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "yikatong-adapter-greater-bay"
    assert project["project"]["dependencies"] == ["yikatong-gateway"]
    entry_points = project["project"]["entry-points"]
    assert entry_points["yikatong.adapters"] == {NAME: "yikatong_adapter_greater_bay.adapter:GreaterBayAdapter"}
    assert entry_points["yikatong.sandboxes"] == {NAME: "yikatong_adapter_greater_bay.sandbox:serve"}


def test_the_region_files_are_valid_and_the_sandbox_systems_build_from_them(tmp_path: Path) -> None:
    made = scaffold(NAME, tmp_path)

    config = load_region(made.root / "config" / f"{NAME}.toml")
    backend = build_backend(config)  # seeds people from the template's cities, prices from its policy table

    assert (config.region_id, config.adapter, config.provinces) == (NAME, NAME, ("61",))
    assert Path(config.sandbox.policies_file) == made.root / "config" / "policy" / f"{NAME}.toml"
    assert backend.cards.people and backend.medical.insured


async def test_the_adapter_is_instantiable_registrable_and_every_method_says_implement_me(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = scaffold("bay-stub", tmp_path)
    monkeypatch.syspath_prepend(str(made.root))
    cls = importlib.import_module(f"{made.package}.adapter").BayStubAdapter
    registry = AdapterRegistry()

    registry.register("bay-stub", cls)  # refused if any abstract method were left out
    adapter = cls(AdapterSettings("bay-stub", "http://127.0.0.1:9", {}))
    await adapter.start()
    methods = sorted(RegionAdapter.__abstractmethods__)
    for method in methods:
        bound = getattr(adapter, method)
        positional = [p for p in inspect.signature(bound).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        with pytest.raises(NotImplementedError, match=f"^implement {method}$"):
            await bound(*[None] * len(positional), timeout=1.0)
        doc = inspect.getdoc(bound) or ""
        assert "Conformance rules:" in doc and "Args:" in doc, method
    await adapter.close()
    assert len(methods) == 14 and set(methods) <= set(vars(cls))  # each written out in the stub


def test_an_existing_folder_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "yikatong-adapter-greater-bay"
    existing.mkdir()
    (existing / "pyproject.toml").write_text("mine\n")

    assert main(["adapter", "new", NAME, "--dir", str(tmp_path)]) == 2
    assert main(["adapter", "new", "Greater_Bay", "--dir", str(tmp_path)]) == 2

    assert (existing / "pyproject.toml").read_text() == "mine\n"
    assert sorted(p.name for p in existing.iterdir()) == ["pyproject.toml"]
    errors = capsys.readouterr().err
    assert f"{existing} exists already" in errors
    assert "adapter name 'Greater_Bay' must be" in errors


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **(env or {})}
    )


@pytest.mark.slow
def test_a_scaffolded_package_installs_is_listed_and_fails_the_suite_by_rule(tmp_path: Path) -> None:
    new = run(str(BIN / "yikatong"), "adapter", "new", NAME, "--dir", str(tmp_path))
    assert new.returncode == 0, new.stderr
    package = tmp_path / "yikatong-adapter-greater-bay"
    lint = run(str(BIN / "ruff"), "check", "--quiet", str(package))
    assert lint.returncode == 0, lint.stdout  # the generated code passes its own lint configuration
    site = tmp_path / "site"
    pip = (sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index")
    installed = run(*pip, "--disable-pip-version-check", "--target", str(site), str(package))
    assert installed.returncode == 0, installed.stderr
    # A built-in region's file pointed at the new adapter: its built-in sandbox runs the suite.
    regions = tmp_path / "regions"
    regions.mkdir()
    text = (CONFIG_DIR / "sichuan-chongqing.toml").read_text(encoding="utf-8")
    (regions / "sichuan-chongqing.toml").write_text(
        text.replace('adapter = "sichuan-chongqing"', f'adapter = "{NAME}"')
    )
    env = {"PYTHONPATH": str(site), "YIKATONG_REGIONS_DIR": str(regions)}

    listed = run(str(BIN / "yikatong"), "adapter", "list", env=env)
    checked = run(str(BIN / "yikatong"), "adapter", "check", "--region", "sichuan-chongqing", env=env)
    own_region = run(
        *(str(BIN / "yikatong"), "adapter", "check", "--region", NAME, "--rule", "HEALTH"),
        env={"PYTHONPATH": str(site), "YIKATONG_REGIONS_DIR": f"{CONFIG_DIR}{os.pathsep}{package / 'config'}"},
    )

    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()}
    assert rows[NAME] == [
        NAME,
        "yikatong_adapter_greater_bay.adapter:GreaterBayAdapter",
        "yikatong-adapter-greater-bay",
        "0.1.0",
        "sichuan-chongqing",
    ]
    assert checked.returncode == 1, checked.stderr
    lines = checked.stdout.splitlines()
    assert (
        lines[0]
        == "conformance of yikatong_adapter_greater_bay.adapter:GreaterBayAdapter against region sichuan-chongqing"
    )
    assert [line.split()[:2] for line in lines[1:-1]] == [["FAIL", f"[{r.id}]"] for r in rules()]
    assert all("got NotImplementedError: implement " in line for line in lines[1:-1])
    mapping = rules("CARD-STATUS-MAPPING")[0]
    assert (
        f"FAIL  [CARD-STATUS-MAPPING] {mapping.statement}: expected get_card of a SEALED card to answer, "
        "got NotImplementedError: implement get_card"
    ) in lines
    assert lines[-1] == f"{len(rules())} rules: 0 passed, {len(rules())} failed"
    # With its own region file the package's sandbox stub is what fails first, and says so.
    assert own_region.returncode == 1, own_region.stderr
    assert f"FAIL  [HEALTH] {rules('HEALTH')[0].statement}: expected the {NAME} sandbox to start, " in own_region.stdout
    assert "got NotImplementedError: implement serve" in own_region.stdout
