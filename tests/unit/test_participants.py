"""The participants file: validated with errors naming file, key and value; scope by area prefix and institution."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.participants import DEV, PARTICIPANTS_FILE, ROLES, load_participants
from regions.config import ConfigError


def test_the_shipped_file_has_every_role_and_spans_the_nine_provinces() -> None:
    participants = load_participants(PARTICIPANTS_FILE)

    assert {role for p in participants for role in p.roles} == set(ROLES)
    covered = {area[:2] for p in participants for area in p.areas}
    assert covered >= {"11", "12", "13", "31", "32", "33", "34", "50", "51"}


def test_scope_is_by_area_prefix_and_own_institution() -> None:
    hospital = load_participants(PARTICIPANTS_FILE).get("hospital-shanghai-xuhui")
    assert hospital is not None
    assert hospital.covers("310104") and not hospital.covers("310105") and not hospital.covers("500103")
    assert hospital.runs("H3101040001") and not hospital.runs("H3101040002")
    assert DEV.covers("440100") and DEV.runs("anything") and DEV.has("hospital")


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ('id = "x"\nname = "n"\nroles = ["venue"]\nareas = ["31"]', "participant[0].id", "2 to 63"),
        ('id = "h1"\nname = "n"\nroles = ["doctor"]', "participant[0].roles", "is not a role"),
        ('id = "h1"\nname = "n"\nroles = ["venue"]', "participant[0].areas", "is required"),
        ('id = "h1"\nname = "n"\nroles = ["venue"]\nareas = ["3"]', "participant[0].areas", "2, 4 or 6 digits"),
        ('id = "h1"\nname = "n"\nroles = ["hospital"]\nareas = ["31"]', "participant[0].institutions", "required"),
        ('id = "dev"\nname = "n"\nroles = ["operator"]', "participant[0].id", "listed twice"),
        (
            'id = "h1"\nname = "n"\nroles = ["operator"]\nrate_limit = { per_second = 0 }',
            "participant[0].rate_limit.per_second",
            "greater than 0",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_its_key(tmp_path: Path, entry: str, key: str, problem: str) -> None:
    path = tmp_path / "participants.toml"
    path.write_text(f"[[participant]]\n{entry}\n")

    with pytest.raises(ConfigError) as refused:
        load_participants(path)

    assert refused.value.key == key and problem in str(refused.value) and str(path) in str(refused.value)
