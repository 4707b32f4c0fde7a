"""The OpenSLO v1 documents sla-monitor writes and reads, as typed records.

Written from the OpenSLO specification (README of github.com/OpenSLO/OpenSLO, v1): every
documented field of ``Service``, ``SLI``, ``SLO``, ``AlertPolicy``, ``AlertCondition``,
``AlertNotificationTarget`` and ``DataSource``, and nothing else (an unknown field is an
error naming it), so what ``export`` writes stays within the spec and ``importer`` reads
any valid document.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

API_VERSION = "openslo/v1"
#: A positive integer and one of the spec's postfixes (minutes ... years).
DURATION = re.compile(r"^[1-9][0-9]*[mhdwMQY]$")
#: RFC 1123 label names, as the spec asks every implementation to support.
NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

DurationShorthand = Annotated[str, Field(pattern=DURATION.pattern)]
Description = Annotated[str, Field(max_length=1050)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(_Strict):
    name: str = Field(pattern=NAME)
    displayName: str | None = None
    labels: dict[str, str | list[str]] | None = None
    annotations: dict[str, str] | None = None


class MetricSource(_Strict):
    metricSourceRef: str | None = None
    type: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


class MetricSourceHolder(_Strict):
    metricSource: MetricSource


class RatioMetric(_Strict):
    counter: bool | None = None
    good: MetricSourceHolder | None = None
    bad: MetricSourceHolder | None = None
    total: MetricSourceHolder | None = None
    rawType: Literal["success", "failure"] | None = None
    raw: MetricSourceHolder | None = None

    @model_validator(mode="after")
    def _one_form(self) -> RatioMetric:
        if self.raw is not None:
            if any(x is not None for x in (self.good, self.bad, self.total)):
                raise ValueError("raw cannot be used together with good, bad or total")
            if self.rawType is None:
                raise ValueError("rawType is required with raw")
        elif self.total is None or (self.good is None) == (self.bad is None):
            raise ValueError("give total and exactly one of good or bad (or raw)")
        return self


class SLISpec(_Strict):
    description: Description | None = None
    thresholdMetric: MetricSourceHolder | None = None
    ratioMetric: RatioMetric | None = None

    @model_validator(mode="after")
    def _one_metric(self) -> SLISpec:
        if (self.thresholdMetric is None) == (self.ratioMetric is None):
            raise ValueError("give exactly one of thresholdMetric or ratioMetric")
        return self


class SLI(_Strict):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLI"]
    metadata: Metadata
    spec: SLISpec


class InlineSLI(_Strict):
    metadata: Metadata
    spec: SLISpec


class Calendar(_Strict):
    startTime: str
    timeZone: str


class TimeWindow(_Strict):
    duration: DurationShorthand
    isRolling: bool | None = None
    calendar: Calendar | None = None


class Objective(_Strict):
    displayName: str | None = None
    op: Literal["lte", "gte", "lt", "gt"] | None = None
    value: float | None = None
    target: float | None = Field(default=None, ge=0, lt=1)
    targetPercent: float | None = Field(default=None, ge=0, lt=100)
    timeSliceTarget: float | None = Field(default=None, gt=0, le=1)
    timeSliceWindow: DurationShorthand | float | None = None
    indicator: InlineSLI | None = None
    indicatorRef: str | None = None
    compositeWeight: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_target(self) -> Objective:
        if (self.target is None) == (self.targetPercent is None):
            raise ValueError("give exactly one of target or targetPercent")
        return self


class Condition(_Strict):
    kind: Literal["burnrate"] = "burnrate"
    op: Literal["lte", "gte", "lt", "gt"]
    threshold: float
    lookbackWindow: DurationShorthand
    alertAfter: DurationShorthand | None = None


class AlertConditionSpec(_Strict):
    description: Description | None = None
    severity: str = Field(min_length=1)
    condition: Condition


class AlertCondition(_Strict):
    apiVersion: Literal["openslo/v1"] | None = None  # absent when inlined
    kind: Literal["AlertCondition"]
    metadata: Metadata
    spec: AlertConditionSpec


class ConditionRef(_Strict):
    conditionRef: str


class TargetRef(_Strict):
    targetRef: str


class AlertNotificationTargetSpec(_Strict):
    description: Description | None = None
    target: str


class AlertNotificationTarget(_Strict):
    apiVersion: Literal["openslo/v1"] | None = None
    kind: Literal["AlertNotificationTarget"]
    metadata: Metadata
    spec: AlertNotificationTargetSpec


class AlertPolicySpec(_Strict):
    description: Description | None = None
    alertWhenNoData: bool | None = None
    alertWhenResolved: bool | None = None
    alertWhenBreaching: bool | None = None
    conditions: list[AlertCondition | ConditionRef] = Field(min_length=1, max_length=1)
    notificationTargets: list[AlertNotificationTarget | TargetRef] = Field(default_factory=list)


class AlertPolicy(_Strict):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["AlertPolicy"]
    metadata: Metadata
    spec: AlertPolicySpec


class AlertPolicyRef(_Strict):
    alertPolicyRef: str


class SLOSpec(_Strict):
    description: Description | None = None
    service: str
    indicator: InlineSLI | None = None
    indicatorRef: str | None = None
    timeWindow: list[TimeWindow] | None = Field(default=None, min_length=1, max_length=1)
    budgetingMethod: Literal["Occurrences", "Timeslices", "RatioTimeslices"]
    objectives: list[Objective] = Field(min_length=1)
    alertPolicies: list[AlertPolicyRef | AlertPolicy] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_indicator(self) -> SLOSpec:
        if self.indicator is not None and self.indicatorRef is not None:
            raise ValueError("give indicator or indicatorRef, not both")
        return self


class SLO(_Strict):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: Metadata
    spec: SLOSpec


class ServiceSpec(_Strict):
    description: Description | None = None


class Service(_Strict):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["Service"]
    metadata: Metadata
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class DataSourceSpec(_Strict):
    description: Description | None = None
    type: str
    connectionDetails: dict[str, Any] = Field(default_factory=dict)


class DataSource(_Strict):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["DataSource"]
    metadata: Metadata
    spec: DataSourceSpec


Document = Annotated[
    Service | SLI | SLO | AlertPolicy | AlertCondition | AlertNotificationTarget | DataSource,
    Field(discriminator="kind"),
]


class _Holder(BaseModel):
    document: Document


def parse_document(body: Any) -> BaseModel:
    """One OpenSLO v1 document, validated (pydantic ValidationError when it is not)."""
    return _Holder.model_validate({"document": body}).document


__all__ = [
    "API_VERSION",
    "SLI",
    "SLO",
    "AlertCondition",
    "AlertPolicy",
    "Document",
    "Service",
    "parse_document",
]
