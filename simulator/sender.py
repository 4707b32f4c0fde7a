"""Sends events to the monitor's ``POST /api/ingest`` the way a gateway does: in batches,
and again with the same ids when no answer came (the monitor counts each id once)."""

from __future__ import annotations

import json
import logging

import aiohttp

log = logging.getLogger(__name__)

#: Most events in one request: well under the monitor's default ``ingest.max_events``
#: (10,000), and a body under 1 MB, which aiohttp sends without blocking its loop.
MAX_PER_REQUEST = 2_000


class EventSender:
    """A queue of events (JSON lines) for one ingest URL."""

    def __init__(self, url: str, what: str) -> None:
        self.url = url
        self.what = what
        self.unsent: list[str] = []
        #: Events the monitor took (stored or duplicate), and those it refused.
        self.delivered = 0
        self.refused = 0

    async def send(self, session: aiohttp.ClientSession, token: str) -> None:
        """Send the oldest unsent events (one request); kept when the monitor did not
        answer (or answered 5xx), so the next call sends them again."""
        if not self.unsent:
            return
        lines = self.unsent[:MAX_PER_REQUEST]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        try:
            async with session.post(self.url, data="\n".join(lines), headers=headers) as answer:
                text = await answer.text()
                if answer.status >= 500:
                    log.warning(
                        "%s: the monitor answered %d; sending again", self.what, answer.status
                    )
                    return
                if answer.status >= 400 and answer.status != 422:
                    self.refused += len(lines)
                    log.error(
                        "%s: the monitor refused a batch: %d %s", self.what, answer.status, text
                    )
                else:
                    taken = json.loads(text)
                    self.delivered += taken["stored"] + taken["duplicate"]
                    for error in taken["errors"]:
                        self.refused += 1
                        log.error("%s: event refused: %s", self.what, error)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("%s: no answer from the monitor (%s); sending again", self.what, exc)
            return
        self.unsent = self.unsent[len(lines) :]
