"""Where a config's relative paths point: the config file's folder, never the current
directory, so a command run from anywhere finds the daemon's store, spool, archive and
certificates. Files checked while validating (TLS) are anchored in the raw document;
the store, spool and archive, defaults included, on the validated config."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from monitor.config import Config
from monitor.store.locate import is_database, shown

#: Keys whose string values are files, wherever they appear (TLS settings, the truth log).
_FILE_KEYS = frozenset({"ca_file", "cert_file", "key_file", "client_ca_file", "truth_log"})


def anchor_files(document: Any, base: Path) -> None:
    """Make every relative file value of the raw document absolute under ``base``."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in _FILE_KEYS and isinstance(value, str) and value:
                document[key] = _under(base, value)
            else:
                anchor_files(value, base)
    elif isinstance(document, list):
        for item in document:
            anchor_files(item, base)


def anchor_config(config: Config, base: Path) -> Config:
    """The config with its store, spool and report archive under ``base`` when relative
    (their defaults too; ``:memory:`` stays as it is). An archive not configured goes
    beside the store, in its folder's ``reports``."""
    storage = config.storage
    updates: dict[str, str] = {}
    if storage.path != ":memory:":
        updates["path"] = _under(base, storage.path)
    if storage.spool_path is not None:
        updates["spool_path"] = _under(base, storage.spool_path)
    if "directory" in config.reports.model_fields_set:
        directory = _under(base, config.reports.directory)
    elif "path" in updates:
        directory = str(Path(updates["path"]).parent / "reports")
    else:
        directory = _under(base, config.reports.directory)
    reports = config.reports.model_copy(update={"directory": directory})
    return config.model_copy(
        update={"storage": storage.model_copy(update=updates), "reports": reports}
    )


def _under(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    # normpath: "config/../data/x" reads as "data/x" in logs and banners (no symlinks
    # are resolved, so a linked folder stays as configured).
    return os.path.normpath(path if path.is_absolute() else base / path)


__all__ = ["anchor_config", "anchor_files"]


def store_identity(path: str) -> str:
    """A short, stable name of a store file or database (a hash of its real path or of its
    server and database name, not the path itself):
    ``/healthz`` shows it, so the CLI can tell the daemon that writes its store from
    another one answering on the same address."""
    if path == ":memory:":
        return "memory"
    if is_database(path):  # the server and database, not who connects nor how
        return hashlib.sha256(shown(path).split("@")[-1].encode()).hexdigest()[:16]
    real = os.path.realpath(path)
    return hashlib.sha256(real.encode()).hexdigest()[:16]
