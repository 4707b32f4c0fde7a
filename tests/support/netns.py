"""Locations on one machine: a network namespace per location, each with two paths into
the host's namespace — one to the probed target, one to the store — so a test can cut a
location's path to the target and leave its path to the store up.

The host's namespace holds the shared addresses on its loopback (containers have no
``dummy`` links): ``TARGET`` (the simulator) and ``STORE`` (PostgreSQL, the webhook
receiver), removed again at the end. Each location reaches them
through its own veth pairs (``ip netns``, ``ip link``; root only, as CI runs). Every
command is an argument list, never a shell line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

#: The simulator's address, and the store's (and the webhook receiver's).
TARGET = "10.250.0.1"
STORE = "10.250.1.1"


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def available() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "iproute2 is not installed (the README's test command installs it)"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    return None


@dataclass(frozen=True)
class Location:
    """One location's namespace and its two links."""

    name: str
    netns: str
    #: The host's end of the link to the target (cut it to cut the location's path).
    target_link: str
    #: This location's own address on its store link (its daemon listens there).
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the location's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def cut(self) -> None:
        """Cut the path to the target (the store stays reachable)."""
        _ip("link", "set", self.target_link, "down")

    def restore(self) -> None:
        """Bring the path to the target back."""
        _ip("link", "set", self.target_link, "up")


@contextmanager
def locations(names: Sequence[str]) -> Iterator[dict[str, Location]]:
    """A namespace per name, removed (with its links) when the block ends."""
    tag = uuid.uuid4().hex[:4]
    made: list[str] = []
    shared = [f"{TARGET}/32", f"{STORE}/32"]
    try:
        for address in shared:
            # A run killed before its clean-up may have left it: take it over.
            subprocess.run(["ip", "addr", "del", address, "dev", "lo"], capture_output=True)
            _ip("addr", "add", address, "dev", "lo")
        result: dict[str, Location] = {}
        for index, name in enumerate(names, start=1):
            netns = f"sla-{tag}-{name}"
            _ip("netns", "add", netns)
            made.append(netns)
            _ip("-n", netns, "link", "set", "lo", "up")
            for path, (destination, subnet) in enumerate(
                ((TARGET, f"10.251.{index}"), (STORE, f"10.252.{index}"))
            ):
                host_end, inner_end = f"sla{tag}{index}{path}h", f"sla{tag}{index}{path}n"
                _ip("link", "add", host_end, "type", "veth", "peer", "name", inner_end)
                _ip("link", "set", inner_end, "netns", netns)
                _ip("addr", "add", f"{subnet}.1/30", "dev", host_end)
                _ip("link", "set", host_end, "up")
                _ip("-n", netns, "addr", "add", f"{subnet}.2/30", "dev", inner_end)
                _ip("-n", netns, "link", "set", inner_end, "up")
                _ip("-n", netns, "route", "add", f"{destination}/32", "via", f"{subnet}.1")
            result[name] = Location(name, netns, f"sla{tag}{index}0h", address=f"10.252.{index}.2")
        yield result
    finally:
        for netns in made:  # deleting a namespace deletes the veth pairs in it
            subprocess.run(["ip", "netns", "delete", netns], check=False, capture_output=True)
        for address in shared:
            subprocess.run(["ip", "addr", "del", address, "dev", "lo"], capture_output=True)
