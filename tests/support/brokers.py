"""Real MQTT brokers for tests: Mosquitto (Debian's package) as a child process on a free
port, and the embedded amqtt broker. A missing ``mosquitto`` binary is a failure, not a
skip: the README's test command installs it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 10.0) -> None:
    """Block until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


@dataclass
class Mosquitto:
    """A Mosquitto process this test started; ``stop``/``start`` simulate an outage."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    #: A TLS listener (port, CA, server certificate, key), requiring client certificates.
    tls: tuple[int, Path, Path, Path] | None = None
    #: Only these users (name -> password) may connect; None: anonymous clients too.
    users: dict[str, str] | None = None

    def start(self) -> None:
        """Start (or restart) the broker on the same port."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed: run `make test` (it installs it)")
        conf = self.workdir / "mosquitto.conf"
        if self.users is not None:
            passwords = self.workdir / "mosquitto.passwd"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwords), user, password], check=True
                )
            passwords.chmod(0o600)
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + (
                "allow_anonymous true\n"
                if self.users is None
                else f"allow_anonymous false\npassword_file {passwords}\nuser root\n"
            )
            + "set_tcp_nodelay true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "max_queued_messages 100000\n"
        )
        if self.tls is not None:
            port, ca, cert, key = self.tls
            with conf.open("a") as more:
                more.write(
                    # Mosquitto started as root drops to its own user, which cannot read
                    # the test's private temporary folder.
                    "user root\n"
                    f"listener {port} 127.0.0.1\n"
                    f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
                    "require_certificate true\n"
                )
        with (self.workdir / "mosquitto.log").open("ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_for_port(self.port)
        if self.tls is not None:
            wait_for_port(self.tls[0])

    def stop(self) -> None:
        """Kill the broker (an abrupt outage, as a crash would be)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def running_mosquitto(workdir: Path) -> Iterator[Mosquitto]:
    """A Mosquitto on a free loopback port for the duration of the block."""
    broker = Mosquitto(port=free_port(), workdir=workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
