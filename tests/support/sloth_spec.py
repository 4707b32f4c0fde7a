"""Sloth's ``prometheus/v1`` spec and its validation rules, written from Sloth's documented
Go types (pkg/prometheus/api/v1) and validator (pkg/common/validation), to check what
``sla-monitor rules --format sloth`` writes without Sloth's Go binary: unknown fields are
errors, names and label keys follow Sloth's patterns, queries carry ``{{.window}}``."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$")
WINDOW = re.compile(r"{{ *\.window *}}")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if key == "__name__" or not LABEL.match(key) or not value:
            raise ValueError(f"label {key!r}={value!r} is not valid")
    return labels


class Events(_Strict):
    error_query: str
    total_query: str

    @model_validator(mode="after")
    def _templates(self) -> Events:
        if self.error_query == self.total_query:
            raise ValueError("both error and total queries can't be the same")
        for query in (self.error_query, self.total_query):
            if not WINDOW.search(query):
                raise ValueError("template must contain the {{ .window }} variable")
        return self


class Raw(_Strict):
    error_ratio_query: str


class Plugin(_Strict):
    id: str
    options: dict[str, str] = Field(default_factory=dict)


class SLI(_Strict):
    raw: Raw | None = None
    events: Events | None = None
    plugin: Plugin | None = None

    @model_validator(mode="after")
    def _one(self) -> SLI:
        if sum(x is not None for x in (self.raw, self.events, self.plugin)) != 1:
            raise ValueError("exactly one SLI type is allowed")
        return self


class Alert(_Strict):
    disable: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> Alert:
        _labels(self.labels)
        if any(not v for v in self.annotations.values()):
            raise ValueError("the annotation value is required")
        return self


class Alerting(_Strict):
    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    page_alert: Alert = Field(default_factory=Alert)
    ticket_alert: Alert = Field(default_factory=Alert)


class SLO(_Strict):
    name: str = Field(pattern=NAME.pattern)
    description: str = ""
    objective: float = Field(gt=0, le=100)
    labels: dict[str, str] = Field(default_factory=dict)
    sli: SLI
    alerting: Alerting


class Spec(_Strict):
    version: Literal["prometheus/v1"]
    service: str = Field(pattern=NAME.pattern)
    labels: dict[str, str] = Field(default_factory=dict)
    slos: list[SLO] = Field(min_length=1)
