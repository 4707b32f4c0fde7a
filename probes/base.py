"""The Probe protocol, the value it returns, and the config fields every probe shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """Accept seconds as a number or a string with a unit ("250ms", "1s", "5m", "1h", "4d").

    Anything else is passed through so pydantic reports it with the key's location.
    """
    if isinstance(value, bool):
        raise ValueError("a duration must be a number or text such as 250ms, not yes/no")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration (use seconds, or a number with ms, s, m, h or d)"
            )
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    return value


#: A duration in seconds, written as a number or with a unit; always > 0.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class Outcome(StrEnum):
    """How one exchange ended. Only ``OK`` is a success."""

    OK = "ok"
    TIMEOUT = "timeout"  # no (valid) answer within the probe's timeout
    CONNECT = "connect"  # could not reach the target or the broker
    STATUS = "status"  # the target answered with an unexpected status
    BODY = "body"  # the answer's body failed the configured check
    PROTOCOL = "protocol"  # malformed answer or protocol violation
    ERROR = "error"  # anything else; the detail says what


@dataclass(frozen=True, slots=True)
class Observation:
    """What one probe run saw.

    Attributes:
        latency_s: seconds from a monotonic clock around the exchange only (for a failure,
            the time until the failure was known, e.g. the timeout).
        outcome: ``Outcome.OK`` or the error class.
        detail: a short human-readable reason for a failure, empty on success.
        request_id: the correlation id sent to the target, so results can be audited
            against the target's own record.
    """

    latency_s: float
    outcome: Outcome
    detail: str = ""
    request_id: str = ""

    @property
    def ok(self) -> bool:
        """True when the exchange succeeded."""
        return self.outcome is Outcome.OK


class Probe(Protocol):
    """Times one exchange with a target each time ``observe`` is called.

    ``observe`` never raises for a target's failure: it classifies it. It enforces its own
    timeout so that the latency of a time-out is the timeout itself.
    """

    async def observe(self) -> Observation:
        """Run one exchange and report what happened."""
        ...

    async def aclose(self) -> None:
        """Release what the probe holds (shared clients are closed by their owner)."""
        ...


class ProbeSettings(BaseModel):
    """Fields every probe kind has. Each probe module extends it with its target details."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    interval: Duration = 10.0
    timeout: Duration = 5.0
