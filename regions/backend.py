"""What a sandbox's protocol server fronts: the region's card system, its medical-insurance system and faults."""

from __future__ import annotations

from dataclasses import dataclass

from regions.cardsystem import CardSystem
from regions.faults import Faults
from regions.medical import MedicalSystem


@dataclass(frozen=True)
class Backend:
    """One region's back-end systems, shared by its protocol server and its admin server.

    Attributes:
        cards: people, cards, the status machine and card applications.
        medical: insured people's accounts, accumulators, filings and settlements.
        faults: the knobs that make the region slow, down or wrong on purpose.
    """

    cards: CardSystem
    medical: MedicalSystem
    faults: Faults
