"""Generate the Python code (with .pyi stubs) for every proto under protos/.

Usage: ``python tools/protogen.py [--check]``. With ``--check`` the code is generated into a temporary
folder and compared with the committed copy; any difference fails, so CI catches stale generated code.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("yikatong", "jingjinji")


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT / 'protos'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for package in PACKAGES:
        for folder in [out / package, *(p for p in (out / package).rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
            (folder / "py.typed").touch()


def differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [str(left / n) for n in cmp.left_only + cmp.right_only + cmp.diff_files]
    for sub in cmp.common_dirs:
        found += differences(left / sub, right / sub)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        if check:
            stale = [d for pkg in PACKAGES for d in differences(ROOT / pkg, Path(tmp) / pkg)]
            if stale:
                print("generated code is stale; run `make protos`:", *stale, sep="\n  ", file=sys.stderr)
                return 1
            print("generated code is up to date")
            return 0
        for package in PACKAGES:
            shutil.rmtree(ROOT / package, ignore_errors=True)
            shutil.copytree(Path(tmp) / package, ROOT / package)
    return 0


if __name__ == "__main__":
    sys.exit(main())
