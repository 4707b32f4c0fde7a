"""The ``contract:`` section of the config: what the monthly report is signed against.

The contract's title and reference, its parties, the period it runs, the wording of each
objective in the contract's languages, and who prepares, checks and approves the report.
The report copies it into its JSON (so the archived document says what it was signed
against) and prints it on its first page.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The languages of the status page and the report.
Language = Literal["en", "fr", "nl"]
LANGUAGES: tuple[Language, ...] = ("en", "fr", "nl")

_Text = Annotated[str, Field(min_length=1, max_length=2000)]
#: One text for every language, or one per language ({fr: ..., nl: ..., en: ...}).
Wording = _Text | dict[Language, _Text]


def text_in(wording: Wording | None, lang: str) -> str | None:
    """``wording`` in ``lang``: its own, else English, else the first given."""
    if wording is None or isinstance(wording, str):
        return wording
    texts: dict[str, str] = {str(k): v for k, v in wording.items()}
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), None)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Strict):
    """A party to the contract."""

    name: _Text
    #: Its role, e.g. "service provider" or "customer" (free text, or per language).
    role: Wording | None = None


class ContractPeriod(_Strict):
    """When the contract runs (``end`` not set: until further notice)."""

    start: dt.date
    end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ContractPeriod:
        if self.end is not None and self.end < self.start:
            raise ValueError("the contract's period ends before it starts")
        return self


class ObjectiveWording(_Strict):
    """The contract's wording of one objective of one service."""

    service: str
    objective: str
    wording: Wording


class Approval(_Strict):
    """Who prepares, checks and approves the monthly report (names printed on the approval
    block; left blank to be filled in by hand)."""

    prepared_by: _Text | None = None
    checked_by: _Text | None = None
    approved_by: _Text | None = None


def _english() -> list[Language]:
    return ["en"]


class ContractConfig(_Strict):
    """The contract the monthly report is signed against."""

    title: Wording
    reference: _Text
    parties: list[Party] = Field(default_factory=list)
    period: ContractPeriod | None = None
    #: The contract's languages: the archived report is rendered in the first.
    languages: list[Language] = Field(default_factory=_english, min_length=1)
    objectives: list[ObjectiveWording] = Field(default_factory=list)
    approval: Approval = Field(default_factory=Approval)

    def wording_of(self, service: str, objective: str) -> Wording | None:
        """The contract's wording of ``objective`` of ``service``, if it gives one."""
        for item in self.objectives:
            if (item.service, item.objective) == (service, objective):
                return item.wording
        return None


__all__ = [
    "LANGUAGES",
    "Approval",
    "ContractConfig",
    "ContractPeriod",
    "Language",
    "ObjectiveWording",
    "Party",
    "Wording",
    "text_in",
]
