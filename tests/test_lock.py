"""The environment is the lock: ``.venv`` holds exactly what requirements.lock pins, and the lock meets pyproject.

``make`` builds ``.venv`` from requirements.lock alone, so CI tests what the lock says. These checks read files and
``pip freeze``, nothing from the network; they fail when the three drift apart (a package installed by hand, a lock
not refreshed after pyproject.toml changed) and say which command puts it right.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def applies(requirement: Requirement) -> bool:
    """Whether a requirement's environment marker holds for this interpreter and platform."""
    return requirement.marker is None or requirement.marker.evaluate()


def pin(requirement: Requirement) -> tuple[str, str]:
    """``(name, version)`` of an exact pin, both normalised; anything but ``==`` fails."""
    specs = list(requirement.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"not an exact pin: {requirement}"
    return canonicalize_name(requirement.name), str(Version(specs[0].version))


def locked() -> dict[str, str]:
    """The lock's pins that apply here (the lock is universal: some pins carry a platform marker)."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if not line or line[0] in "# -":  # comments; hashes and "# via" notes are indented under their pin
            continue
        requirement = Requirement(line.removesuffix("\\").strip())
        if applies(requirement):
            name, version = pin(requirement)
            pins[name] = version
    return pins


def test_venv_holds_exactly_the_lock() -> None:
    """``pip freeze`` equals the lock's pins, setuptools included; only pip, which comes with the venv, is left out."""
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    installed = dict(pin(Requirement(line)) for line in freeze.splitlines() if line)
    installed.pop("pip")
    expected = locked()
    extra = sorted(f"{n}=={v}" for n, v in installed.items() if expected.get(n) != v)
    missing = sorted(f"{n}=={v}" for n, v in expected.items() if installed.get(n) != v)
    assert (extra, missing) == ([], []), f"the venv is not the lock; rebuild it (make clean venv): {extra=} {missing=}"


def test_lock_meets_pyproject() -> None:
    """Every requirement pyproject.toml states (runtime, dev extra, build backend) is locked at a version it allows."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    stated = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["dev"],
        *project["build-system"]["requires"],
    ]
    pins = locked()
    unmet = []
    for text in stated:
        requirement = Requirement(text)
        version = pins.get(canonicalize_name(requirement.name))
        if applies(requirement) and (version is None or not requirement.specifier.contains(version, prereleases=True)):
            unmet.append(f"{text} (locked: {version or 'nothing'})")
    assert not unmet, f"requirements.lock is stale; run `make lock`: {unmet}"
