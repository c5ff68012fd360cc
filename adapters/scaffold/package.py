"""Writing a new adapter package from the templates in ``adapters/scaffold/templates``.

Templates are plain files ending in ``.tmpl`` (so that no linter, type checker or test runner mistakes them
for code of this project) with ``{{placeholder}}`` markers; :data:`FILES` says where each one goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# Template (under templates/, without ".tmpl") → path in the new package, with {name} and {package} filled in.
FILES = {
    "pyproject.toml": "pyproject.toml",
    "README.md": "README.md",
    "package/__init__.py": "{package}/__init__.py",
    "package/adapter.py": "{package}/adapter.py",
    "package/client.py": "{package}/client.py",
    "package/protocol.py": "{package}/protocol.py",
    "package/sandbox.py": "{package}/sandbox.py",
    "package/py.typed": "{package}/py.typed",
    "config/region.toml": "config/{name}.toml",
    "config/policy.toml": "config/policy/{name}.toml",
    "tests/test_conformance.py": "tests/test_conformance.py",
}
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class ScaffoldError(Exception):
    """The package cannot be written: a bad name, or its folder exists already."""


@dataclass(frozen=True)
class Scaffolded:
    """A package written by :func:`scaffold`.

    Attributes:
        root: the package's folder, ``<dir>/yikatong-adapter-<name>``.
        name: the adapter's (and region's) name, e.g. ``greater-bay``.
        distribution: the distribution name, ``yikatong-adapter-<name>``.
        package: the import package, ``yikatong_adapter_<name with underscores>``.
        class_name: the adapter class, e.g. ``GreaterBayAdapter``.
        files: every file written, relative to ``root``.
    """

    root: Path
    name: str
    distribution: str
    package: str
    class_name: str
    files: tuple[Path, ...]


def package_names(name: str) -> dict[str, str]:
    """The names a package for adapter ``name`` uses, as the templates' placeholders.

    Raises:
        ScaffoldError: ``name`` is not 2–40 lower-case letters, digits and single dashes, starting with a letter.
    """
    if not (2 <= len(name) <= 40 and _NAME.fullmatch(name)):
        raise ScaffoldError(
            f"adapter name {name!r} must be 2 to 40 lower-case letters and digits, starting with a letter, "
            "words joined by single dashes (e.g. greater-bay)"
        )
    words = name.split("-")
    return {
        "name": name,
        "title": " ".join(w.capitalize() for w in words),
        "distribution": f"yikatong-adapter-{name}",
        "package": "yikatong_adapter_" + "_".join(words),
        "class": "".join(w.capitalize() for w in words) + "Adapter",
    }


def _render(text: str, names: dict[str, str], template: str) -> str:
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in names:
            raise ScaffoldError(f"template {template} uses unknown placeholder {key!r}")
        return names[key]

    return _PLACEHOLDER.sub(fill, text)


def scaffold(name: str, directory: Path) -> Scaffolded:
    """Write the package of a new adapter ``name`` into ``directory/yikatong-adapter-<name>``.

    Raises:
        ScaffoldError: the name is invalid, or the package folder exists already (nothing is overwritten).
    """
    names = package_names(name)
    root = directory / names["distribution"]
    if root.exists():
        raise ScaffoldError(f"{root} exists already; choose another --dir or remove it first")
    templates = resources.files("adapters.scaffold").joinpath("templates")
    written: list[Path] = []
    rendered = {
        Path(target.format(name=name, package=names["package"])): _render(
            templates.joinpath(source + ".tmpl").read_text(encoding="utf-8"), names, source
        )
        for source, target in FILES.items()
    }
    for relative, text in rendered.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(relative)
    return Scaffolded(root, name, names["distribution"], names["package"], names["class"], tuple(written))
