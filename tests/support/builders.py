"""Test builders: a config from a few words, so each test says only what matters to it.

config(service("a", latency={"fast": 1}, availability=["up"]), alerting={...})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from monitor.config import Config

#: A probe target nothing listens on: these configs are for tests that feed results.
NOWHERE = "http://127.0.0.1:9/"


def probe(name: str = "p", **extra: Any) -> dict[str, Any]:
    """An HTTP probe document."""
    return {"name": name, "kind": "http", "url": NOWHERE, **extra}


def service(
    name: str,
    *,
    probes: Iterable[str] = ("p",),
    latency: Mapping[str, float] | None = None,
    availability: Iterable[str] = (),
    target: float = 99,
    **extra: Any,
) -> dict[str, Any]:
    """A service document: HTTP probes, latency objectives (name -> threshold in seconds)
    and availability objectives, all at ``target``; ``extra`` adds keys (``schedule``,
    ``depends_on``, ``maintenance``...)."""
    objectives: list[dict[str, Any]] = [
        {"name": objective, "kind": "latency", "threshold": threshold, "target": target}
        for objective, threshold in (latency or {}).items()
    ]
    objectives += [
        {"name": objective, "kind": "availability", "target": target} for objective in availability
    ]
    return {"name": name, "probes": [probe(p) for p in probes], "objectives": objectives, **extra}


def document(*services: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A whole config document (storage in memory unless ``top`` says otherwise)."""
    return {"storage": {"path": ":memory:"}, "services": list(services), **top}


def config(*services: dict[str, Any], **top: Any) -> Config:
    """A validated config."""
    return Config.model_validate(document(*services, **top))
