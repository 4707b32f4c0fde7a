"""Parsing and checking events (monitor/ingest/events.py): the documented schema is the one the
code validates with, arrays and NDJSON read alike, each bad event gets its own error."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.config import Config
from monitor.ingest.events import (
    EventReader,
    ExchangeEvent,
    LineError,
    ReaderSpec,
    events_json_schema,
    parse_events,
)
from monitor.results import Result

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_795_000_020.0


def _event(**change: object) -> dict[str, object]:
    return {
        "type": "exchange",
        "id": "e1",
        "service": "online",
        "start": "2026-11-18T11:06:00Z",
        "duration_s": 0.25,
        "outcome": "ok",
        **change,
    }


def test_the_documented_schema_is_the_one_the_code_validates_with() -> None:
    published = json.loads((ROOT / "docs" / "events.schema.json").read_text())
    # After a change to ExchangeEvent, regenerate it as docs/events.md says.
    assert published == events_json_schema()


def test_an_array_and_ndjson_give_the_same_events() -> None:
    events = [_event(id=f"e{n}") for n in range(3)]
    as_array = list(parse_events(json.dumps(events).encode()))
    as_lines = list(parse_events("\n".join(json.dumps(e) for e in events).encode()))
    assert as_array == as_lines
    assert [n for n, _ in as_array] == [1, 2, 3]
    assert all(isinstance(e, ExchangeEvent) for _, e in as_array)


def test_a_bad_event_in_an_array_gets_its_own_error_and_the_others_go_on() -> None:
    body = json.dumps([_event(), _event(id="e2", duration_s=-1), 7, _event(id="e3")])
    parsed = dict(parse_events(body.encode()))
    assert isinstance(parsed[1], ExchangeEvent)
    assert isinstance(parsed[4], ExchangeEvent)
    assert isinstance(parsed[2], LineError)
    assert parsed[2].error.startswith("duration_s: Input should be greater than or equal to 0")
    assert parsed[3] == LineError(3, "an event must be a JSON object")


def test_ndjson_line_numbers_count_blank_lines() -> None:
    body = f"{json.dumps(_event())}\n\n{{not json\n".encode()
    parsed = dict(parse_events(body))
    assert set(parsed) == {1, 3}
    assert isinstance(parsed[3], LineError)
    assert parsed[3].error.startswith("not JSON")


def test_an_event_becomes_a_result_of_its_feed_in_the_minute_it_started() -> None:
    config = Config.model_validate(
        {
            "services": [
                {"name": "online", "probes": [{"name": "messages", "kind": "traffic"}]},
            ]
        }
    )
    reader = EventReader(ReaderSpec.of(config))
    event = ExchangeEvent.model_validate(_event(end="2026-11-18T11:06:01.5Z", duration_s=None))
    result = reader.check(1, event, NOW)
    assert isinstance(result, Result)
    assert (result.service, result.probe, result.kind, result.request_id) == (
        "online",
        "messages",
        "traffic",
        "e1",
    )
    assert result.latency_s == 1.5
    assert result.minute == int(NOW // 60) - 1
