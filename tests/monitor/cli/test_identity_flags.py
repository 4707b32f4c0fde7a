"""``sla-monitor run --instance --location --store-url``: one config file for every
location, each daemon told who it is on its command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli.common import UsageError
from monitor.cli.main import with_identity
from monitor.config import load_config

CONFIG = """\
instance: {name: from-file, location: brussels}
services:
  - name: svc
    probes:
      - {name: p, kind: http, url: "http://127.0.0.1:9/"}
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def test_flags_override_the_config_and_absent_flags_keep_it(config_path: Path) -> None:
    config = load_config(config_path)
    same = with_identity(config, None, None, None)
    assert (same.instance.name, same.instance.location, same.storage.url) == (
        "from-file",
        "brussels",
        None,
    )
    moved = with_identity(config, "probe-lgg-1", "liege", "postgresql://sla@db/sla")
    assert (moved.instance.name, moved.instance.location) == ("probe-lgg-1", "liege")
    assert moved.storage.url == "postgresql://sla@db/sla"
    assert moved.instance.leader_timeout == config.instance.leader_timeout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("a b", None, None), "--instance 'a b': String should match pattern"),
        ((None, "x/y", None), "--location 'x/y': String should match pattern"),
        ((None, None, "mysql://db/x"), "--store-url: not a postgresql:// URL"),
        ((None, None, "postgresql://u:pw@db/x"), "--store-url: holds a password"),
    ],
)
def test_a_bad_flag_is_a_usage_error_naming_it(
    config_path: Path, args: tuple[str | None, str | None, str | None], message: str
) -> None:
    with pytest.raises(UsageError) as excinfo:
        with_identity(load_config(config_path), *args)
    assert str(excinfo.value).startswith(message)
    assert "pw" not in str(excinfo.value).replace("password", "")


def test_with_named_locations_the_daemon_must_be_one_of_them(tmp_path: Path) -> None:
    path = tmp_path / "locations.yaml"
    path.write_text(
        "storage: {url: 'postgresql://sla@db/sla'}\n"
        "locations: {names: [brussels, liege]}\n" + CONFIG.split("\n", 1)[1]
    )
    config = load_config(path)  # one file for both: the location comes from the flag
    assert with_identity(config, None, "liege", None).instance.location == "liege"
    with pytest.raises(UsageError, match=r"^--location 'ghent': not one of locations\.names"):
        with_identity(config, None, "ghent", None)
    with pytest.raises(UsageError, match=r"^--location 'default': .*give this daemon's"):
        with_identity(config, None, None, None)
