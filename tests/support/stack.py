"""Builds a simulator and a daemon config around it, for end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.config import Config
from probes.settings import MqttBrokerSettings
from simulator.settings import SimulatorSettings


def simulator_settings(
    *,
    seed: int = 7,
    topics: list[str] | None = None,
    routes: list[str] | None = None,
    profile: dict[str, Any] | None = None,
    truth_log: Path | None = None,
) -> SimulatorSettings:
    """One profile shared by every MQTT topic and HTTP route; HTTP on a free port."""
    body: dict[str, Any] = {
        "seed": seed,
        "profiles": {"test": profile or {"latency": {"median": 0.05, "sigma": 0.3}}},
        "mqtt": [{"request_topic": t, "profile": "test"} for t in topics or []],
    }
    if routes:
        body["http"] = {
            "listen": "127.0.0.1:0",
            "routes": [{"path": r, "profile": "test"} for r in routes],
        }
    if truth_log is not None:
        body["truth_log"] = str(truth_log)
    return SimulatorSettings.model_validate(body)


def daemon_config(
    *,
    store: Path,
    broker_port: int | None = None,
    services: list[dict[str, Any]],
    listen: str = "127.0.0.1:0",
    batch_size: int = 1000,
) -> dict[str, Any]:
    """A daemon config document (a dict, so tests can also write it as YAML)."""
    body: dict[str, Any] = {
        "server": {"listen": listen},
        "storage": {"path": str(store), "batch_size": batch_size, "flush_interval": 0.5},
        # Beside the store: the default (data/reports) would land in the checkout.
        "reports": {"directory": str(store.parent / "reports")},
        "services": services,
    }
    if broker_port is not None:
        body["brokers"] = {"default": {"host": "127.0.0.1", "port": broker_port}}
    return body


def brokers_of(document: dict[str, Any]) -> dict[str, MqttBrokerSettings]:
    """The brokers of a config document, validated."""
    return {
        name: MqttBrokerSettings.model_validate(b)
        for name, b in document.get("brokers", {}).items()
    }


def write_config(document: dict[str, Any], path: Path) -> Path:
    """Write a config document as YAML and return its path."""
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def validate(document: dict[str, Any]) -> Config:
    """The config document, validated."""
    return Config.model_validate(document)
