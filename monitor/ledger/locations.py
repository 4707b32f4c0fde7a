"""What the locations decided lately, as ``/api/sla`` shows it: the quorum in force and
the location faults of the last hour (from the ledger's sealed minutes)."""

from __future__ import annotations

from typing import Any

from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.timeparse import iso_utc

#: Minutes of faults shown (the ledger keeps as many).
_SHOWN = 60


def locations_view(config: Config, ledger: Ledger) -> dict[str, Any]:
    """The locations, the quorum, the last decided minute and, per service, objective and
    location, how many of the last hour's decided minutes were that location's fault."""
    own = config.instance.location
    sealed = ledger.sealed_through
    faults: dict[tuple[str, str, str], list[int]] = {}
    if sealed is not None and ledger.shared:
        minutes = ledger.faults_between(sealed - _SHOWN + 1, sealed)
        for offset, per_objective in enumerate(minutes):
            for key, locations in per_objective.items():
                for location in locations:
                    faults.setdefault((key.service, key.objective, location), []).append(offset)
    return {
        "names": config.locations.of(own),
        "self": own,
        "quorum": config.locations.quorum_of(own),
        "decided_through": None if sealed is None else iso_utc((sealed + 1) * 60.0),
        "faults": [
            {
                "service": service,
                "objective": objective,
                "location": location,
                "minutes_last_hour": len(offsets),
                "in_last_minute": offsets[-1] == _SHOWN - 1,
            }
            for (service, objective, location), offsets in sorted(faults.items())
        ],
    }
