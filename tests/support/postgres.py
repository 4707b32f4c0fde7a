"""A real PostgreSQL for tests.

The server named by ``SLA_TEST_POSTGRES`` (a libpq URL to an administrative database), else
the machine's own on 127.0.0.1:5432 when one answers, else one this test session starts
itself (Debian's ``initdb`` and ``pg_ctl``, on a free port in a temporary folder; as
``postgres`` when run as root, which initdb refuses). Each test gets a database of its
own, dropped afterwards. No server and no binaries is a failure, not a skip: the README's
test command installs the ``postgresql`` package.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.support.brokers import free_port, wait_for_port

MACHINE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed and none answers on 127.0.0.1:5432:"
            " run `make test` (it installs the postgresql package)"
        )
    return Path(found[-1]).parent


class OwnPostgres:
    """A PostgreSQL server started by the tests in a folder of its own; ``stop`` and
    ``start`` again make an outage on the same port."""

    def __init__(self, listen: str = "127.0.0.1") -> None:
        self.bindir = _binaries()
        self.listen = listen
        # Its own folder in /tmp: as root the server runs as ``postgres``, which cannot
        # reach into pytest's private temporary folders.
        workdir = Path(tempfile.mkdtemp(prefix="sla-pg-"))
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@{listen}:{self.port}/postgres"
        self._as: list[str] = []
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            account = pwd.getpwnam("postgres")
            os.chown(workdir, account.pw_uid, account.pw_gid)
            os.chown(self.data, account.pw_uid, account.pw_gid)
            self._as = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust")
        if listen != "127.0.0.1":
            # Listening on a test's own address: its clients are network namespaces the
            # test made, on the host's subnets of their links (``samenet``).
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / tool), *args], check=check, capture_output=True
        )

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses={self.listen} -c fsync=off"
        log = str(self.workdir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        wait_for_port(self.port, self.listen)

    def stop(self) -> None:
        """Stop the server (fast: open connections are cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)


@contextlib.contextmanager
def own_server(listen: str = "127.0.0.1") -> Iterator[OwnPostgres]:
    """A server of the caller's own, stopped and removed when the block ends."""
    server = OwnPostgres(listen)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The administrative URL of a running server, for the whole session."""
    url = os.environ.get("SLA_TEST_POSTGRES")
    if url:
        if not _answers(url):
            raise RuntimeError(f"SLA_TEST_POSTGRES={url} does not answer")
        yield url
    elif _answers(MACHINE_URL):
        yield MACHINE_URL
    else:
        with own_server() as own:
            yield own.url


@contextlib.contextmanager
def database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped when the block ends."""
    name = f"sla_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
