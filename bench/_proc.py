"""Runs ``sla-monitor run`` or ``sla-monitor simulate`` in this process on a chosen loop.

Used by the benchmarks so the daemon and the simulator are separate processes::

    python bench/_proc.py run --config X [--loop asyncio|uvloop]
    python bench/_proc.py simulate --config X [--loop asyncio|uvloop]

The code path is ``monitor.cli.main`` itself; only the event-loop policy differs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.cli.main import main as cli_main


def main() -> int:
    """Parse the arguments, pick the loop, hand over to the CLI."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run", "simulate"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument(
        "--mqtt-inflight",
        type=int,
        default=0,
        help="EXPERIMENT: override the probes' paho max_inflight_messages (0: keep the code's)",
    )
    args = parser.parse_args()
    if args.mqtt_inflight:
        _override_mqtt_inflight(args.mqtt_inflight)
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return cli_main(["--log-level", "WARNING", args.command, "--config", args.config])


def _override_mqtt_inflight(value: int) -> None:
    import aiomqtt

    import probes.mqtt

    def client(*args: Any, **kwargs: Any) -> aiomqtt.Client:
        kwargs["max_inflight_messages"] = value
        return aiomqtt.Client(*args, **kwargs)

    probes.mqtt.aiomqtt = type(  # type: ignore[assignment]
        "aiomqtt_patched",
        (),
        {
            "Client": client,
            "MqttError": aiomqtt.MqttError,
            "Message": aiomqtt.Message,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
