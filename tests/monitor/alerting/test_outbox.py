"""The notifications outbox against a real webhook receiver: a notice is stored before it
is sent and marked once delivered; one stored and never delivered (its process died) is
sent by the next one, once; one given up on is not sent again."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry

from monitor.alerting.dispatcher import Dispatcher
from monitor.alerting.outbox import NoticeOutbox, body_of, event_of
from monitor.errors import StoreError
from monitor.store import MemoryStore
from tests.fakes import FakeClock
from tests.monitor.alerting.test_notifiers import FIRING, Receiver, receiver, webhook

__all__ = ["receiver"]  # the fixture, used by name


def dispatcher_for(rec: Receiver, **options: float) -> Dispatcher:
    return Dispatcher(
        {"hook": webhook(rec.url)},
        CollectorRegistry(),
        backoff_min_s=0.01,
        backoff_max_s=0.02,
        **options,  # type: ignore[arg-type]
    )


async def until(condition: object, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def kinds(rec: Receiver) -> list[str]:
    return [json.loads(body)["kind"] for _, body in rec.requests]


def test_an_event_survives_the_outbox_unchanged() -> None:
    assert event_of(body_of(FIRING)) == FIRING


async def test_stored_then_sent_then_marked(receiver: Receiver) -> None:
    store = MemoryStore()
    dispatcher = dispatcher_for(receiver)
    await dispatcher.start()
    outbox = NoticeOutbox(store, dispatcher, FakeClock())
    outbox.notify("hook", FIRING)
    assert receiver.requests == []  # held until stored
    await outbox.store()
    [stored] = await store.unsent_notices()
    assert (stored.notifier, event_of(stored.body)) == ("hook", FIRING)
    outbox.send()
    await until(lambda: len(receiver.requests) == 1)
    await asyncio.sleep(0.05)
    await outbox.store()  # the next evaluation marks it
    assert await store.unsent_notices() == []
    assert await outbox.resume() == 0
    await dispatcher.aclose()
    assert kinds(receiver) == ["firing"]


async def test_a_notice_its_process_never_delivered_is_sent_once_by_the_next(
    receiver: Receiver,
) -> None:
    store = MemoryStore()
    receiver.statuses = [500] * 1000  # down while the first process tries
    first = dispatcher_for(receiver, max_attempts=1000)
    await first.start()
    dying = NoticeOutbox(store, first, FakeClock())
    dying.notify("hook", FIRING)
    await dying.store()
    dying.send()
    await until(lambda: len(receiver.requests) >= 2)
    for task in first._workers:  # the process dies: no shutdown, no mark
        task.cancel()
    await asyncio.gather(*first._workers, return_exceptions=True)
    await first.notifiers["hook"].aclose()  # its sockets die with it
    assert len(await store.unsent_notices()) == 1

    receiver.statuses = []
    tried = len(receiver.requests)
    second = dispatcher_for(receiver)
    await second.start()
    successor = NoticeOutbox(store, second, FakeClock())
    assert await successor.resume() == 1
    await until(lambda: len(receiver.requests) == tried + 1)
    assert await successor.resume() == 0  # on its way: not twice
    await asyncio.sleep(0.05)
    await successor.store()
    assert await store.unsent_notices() == []
    await second.aclose()
    assert len(receiver.requests) == tried + 1


async def test_a_notice_given_up_on_is_marked_and_not_resumed(receiver: Receiver) -> None:
    store = MemoryStore()
    receiver.statuses = [500, 500]
    dispatcher = dispatcher_for(receiver, max_attempts=2)
    await dispatcher.start()
    outbox = NoticeOutbox(store, dispatcher, FakeClock())
    outbox.notify("hook", FIRING)
    await outbox.store()
    outbox.send()
    await until(lambda: len(receiver.requests) == 2)
    await asyncio.sleep(0.05)
    await outbox.store()
    assert await store.unsent_notices() == []
    assert await outbox.resume() == 0
    await dispatcher.aclose()


class Failing(MemoryStore):
    async def add_notices(self, notices: object, at: float) -> list[int]:
        raise StoreError("disk full (injected)")


async def test_a_store_that_fails_does_not_hold_a_page_back(receiver: Receiver) -> None:
    dispatcher = dispatcher_for(receiver)
    await dispatcher.start()
    outbox = NoticeOutbox(Failing(), dispatcher, FakeClock())
    outbox.notify("hook", FIRING)
    await outbox.store()  # not stored: sent at once
    await until(lambda: len(receiver.requests) == 1)
    await dispatcher.aclose()
