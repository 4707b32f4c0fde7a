"""The availability figure under each treatment of excluded time.

Tools disagree on how maintenance and unmonitored time count (Zabbix and Icinga count
maintenance as available; Datadog's monitor SLOs remove it; Datadog counts missing time
as up). The contract's rule is the verdict: announced maintenance and unmonitored minutes
are removed from the denominator (unmonitored ones reported as coverage). The report's
appendix shows the month under the other treatments too, so both parties see at once how
much each choice moves the figure. Outside service hours and a provider's unavailability
are excluded under every treatment (the contract's periods of availability).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: The treatments, the contract's first.
TreatmentKey = Literal[
    "contract", "maintenance_up", "maintenance_down", "unmonitored_up", "unmonitored_down"
]


@dataclass(frozen=True, slots=True)
class Treatment:
    """The month's availability when excluded time is counted one way."""

    key: TreatmentKey
    #: Minutes counted as available, and all minutes counted.
    up: int
    counted: int

    @property
    def ratio(self) -> float | None:
        """up / counted (None: nothing counted)."""
        return self.up / self.counted if self.counted else None


def treatments(minute_states: Mapping[str, int]) -> list[Treatment]:
    """The five treatments of a month's (or any period's) availability minutes, from the
    counts of each minute state (``ObjectiveReport.minute_states``)."""
    up = minute_states.get("up", 0)
    down = minute_states.get("down", 0)
    maintenance = minute_states.get("maintenance", 0)
    unmonitored = minute_states.get("unmonitored", 0)
    measured = up + down
    return [
        Treatment("contract", up, measured),
        Treatment("maintenance_up", up + maintenance, measured + maintenance),
        Treatment("maintenance_down", up, measured + maintenance),
        Treatment("unmonitored_up", up + unmonitored, measured + unmonitored),
        Treatment("unmonitored_down", up, measured + unmonitored),
    ]
