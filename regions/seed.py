"""Deterministic synthetic people for the sandboxes (DESIGN §3).

Every machine generates the same people from the same seed: cards in every status, holders whose ID-number
area differs from the card's issuing area (people who moved), employee and resident insurance, a few people
with no medical insurance and a few with no card yet (who may apply for one).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapters.domain import CardStatus, Gender, Insurance, InsuranceType
from adapters.identifiers import CARD_CODE_MARK, card_number_check, ssn_check
from regions.config import RegionConfig

SEED = 20261128
PEOPLE_PER_PROVINCE = 220

# Real GB/T 2260 city or district codes of each federated province, and of provinces people move from.
CITIES: dict[str, tuple[str, ...]] = {
    "11": ("110101", "110102", "110105", "110106", "110108"),
    "12": ("120101", "120103", "120104", "120110", "120116"),
    "13": ("130100", "130200", "130400", "130600", "131000"),
    "31": ("310101", "310104", "310105", "310106", "310110", "310112", "310115"),
    "32": ("320100", "320200", "320300", "320400", "320500", "320600"),
    "33": ("330100", "330200", "330300", "330400", "330600", "331000"),
    "34": ("340100", "340200", "340300", "340500", "341000"),
    "50": ("500101", "500103", "500105", "500106", "500112"),
    "51": ("510100", "510300", "510500", "510700", "511100", "511300"),
}
# One treatment place per federated province (a code of CITIES): where the tests and the chaos run's load put their
# hospitals and venues.
VENUES: dict[str, str] = {
    "11": "110105",
    "12": "120103",
    "13": "130100",
    "31": "310104",
    "32": "320100",
    "33": "330100",
    "34": "340100",
    "50": "500103",
    "51": "510100",
}
ORIGINS_ELSEWHERE = ("410100", "420100", "430100", "360100", "370100", "440100", "610100", "230100")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂兰玉华建国红梅文斌宇浩然子涵欣怡思远嘉慧俊"

# Status mix of seeded cards; None means the person has no card yet.
STATUS_MIX: tuple[tuple[CardStatus | None, int], ...] = (
    (CardStatus.NORMAL, 70),
    (CardStatus.SEALED, 7),
    (CardStatus.LOST, 4),
    (CardStatus.LOCKED, 5),
    (CardStatus.TEMPORARILY_LOST, 6),
    (CardStatus.CANCELLED, 4),
    (None, 4),
)


@dataclass(frozen=True)
class SeededPerson:
    """One synthetic person as the region's systems hold them when the sandbox starts."""

    social_security_number: str
    name: str
    gender: Gender
    birth_date: str
    card_number: str
    card_identification_code: str
    issuing_area: str
    status: CardStatus | None
    generation: int
    valid_until: str
    insurance: Insurance | None
    account_balance_fen: int
    accumulators: dict[str, dict[str, int]]
    fails_production: bool


def make_ssn(rng: random.Random, area: str) -> tuple[str, dt.date]:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 64))
    first17 = f"{area}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + ssn_check(first17), born


def make_card_number(rng: random.Random) -> str:
    first8 = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))
    return first8 + card_number_check(first8)


def make_identification_code(rng: random.Random, issuing_area: str) -> str:
    return issuing_area + CARD_CODE_MARK + f"{rng.getrandbits(64):016X}"


def _weighted_status(rng: random.Random) -> CardStatus | None:
    statuses = [status for status, _ in STATUS_MIX]
    status: CardStatus | None = rng.choices(statuses, [weight for _, weight in STATUS_MIX])[0]
    return status


def _person(rng: random.Random, province: str, index: int, cities: Mapping[str, Sequence[str]]) -> SeededPerson:
    issuing_area = rng.choice(cities[province])
    moved = index % 9 == 4
    origin = rng.choice(ORIGINS_ELSEWHERE) if moved else issuing_area
    ssn, born = make_ssn(rng, origin)
    gender = Gender.MALE if int(ssn[16]) % 2 else Gender.FEMALE
    roll = rng.random()
    insurance_type = InsuranceType.EMPLOYEE if roll < 0.55 else InsuranceType.RESIDENT if roll < 0.95 else None
    insurance = Insurance(issuing_area, insurance_type) if insurance_type else None
    employee = insurance_type is InsuranceType.EMPLOYEE
    return SeededPerson(
        social_security_number=ssn,
        name=rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
        gender=gender,
        birth_date=born.isoformat(),
        card_number=make_card_number(rng),
        card_identification_code=make_identification_code(rng, issuing_area),
        issuing_area=issuing_area,
        status=_weighted_status(rng),
        generation=rng.choice((2, 3, 3)),
        valid_until=f"{rng.randrange(2027, 2036)}-{rng.randrange(1, 13):02d}-01",
        insurance=insurance,
        account_balance_fen=rng.randrange(0, 800_000) if employee else 0,
        accumulators={
            visit: {
                "deductible_used_fen": rng.choice((0, 0, 20_000, 50_000)),
                "fund_paid_fen": rng.randrange(0, 300_000),
            }
            for visit in ("OUTPATIENT", "INPATIENT")
        }
        if insurance
        else {},
        fails_production=rng.random() < 0.05,
    )


def generate(
    region_id: str,
    provinces: tuple[str, ...],
    seed: int = SEED,
    cities: Mapping[str, Sequence[str]] | None = None,
) -> list[SeededPerson]:
    """The region's people: ``PEOPLE_PER_PROVINCE`` per province, the same on every machine.

    ``cities`` gives the area codes of provinces :data:`CITIES` does not know (a partner's region).
    """
    rng = random.Random(f"{region_id}:{seed}")
    known = {**CITIES, **(cities or {})}
    people = [_person(rng, province, i, known) for province in provinces for i in range(PEOPLE_PER_PROVINCE)]
    unique = {p.social_security_number: p for p in people}  # drop the rare SSN collision
    return list(unique.values())


def people_of(config: RegionConfig) -> list[SeededPerson]:
    """The seeded people of a configured region (its own city codes included)."""
    return generate(config.region_id, config.provinces, cities=config.sandbox.cities)
