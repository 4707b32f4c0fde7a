"""Probes: one module per protocol, each timing one exchange with a target.

Probes know nothing about SLAs, storage or metrics: they observe and classify.
"""

from probes.base import Observation, Outcome, Probe, ProbeSettings

__all__ = ["Observation", "Outcome", "Probe", "ProbeSettings"]
