"""Integrated-service calls over HTTP, timed with aiohttp.

How aiohttp's errors map to outcomes (checked in this order)::

    TimeoutError (our deadline, or aiohttp's ServerTimeoutError)     -> TIMEOUT
    ServerDisconnectedError, ClientPayloadError,
    ClientResponseError, HttpProcessingError (malformed answer)      -> PROTOCOL
    ClientConnectionError (ClientConnectorError, ClientOSError,
    connection refused or reset), OSError                            -> CONNECT
    any other Exception                                               -> ERROR
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import uuid

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from probes.base import Observation, Outcome
from probes.settings import HttpProbeSettings, HttpTarget
from probes.tls import ssl_context

__all__ = ["HttpProbe", "http_exchange"]

_NS_PER_S = 1e9
_DETAIL_MAX = 200


async def http_exchange(
    session: aiohttp.ClientSession, target: HttpTarget, request_id: str, timeout_s: float
) -> Observation:
    """Make one HTTP call to ``target`` and classify it; never raises for a target's failure.

    The latency covers sending the request and reading the whole body. ``timeout_s`` is
    enforced exactly by ``asyncio.timeout`` (not rounded like aiohttp's own timeouts).
    """
    headers = {**target.headers, target.request_id_header: request_id}
    for header, variable in target.headers_env.items():
        headers[header] = os.environ.get(variable, "")  # `run` refuses to start without it
    data = target.body.encode() if target.body is not None else None
    tls: ssl.SSLContext | bool = True if target.tls is None else ssl_context(target.tls)
    start = time.perf_counter_ns()
    try:
        async with asyncio.timeout(timeout_s):
            async with session.request(
                target.method, target.url, headers=headers, data=data, ssl=tls
            ) as response:
                body = await response.read()
                status = response.status
    except TimeoutError:
        return _observe(start, Outcome.TIMEOUT, f"no answer within {timeout_s:g} s", request_id)
    except (
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientPayloadError,
        aiohttp.ClientResponseError,
        HttpProcessingError,
    ) as exc:
        return _observe(start, Outcome.PROTOCOL, _describe(exc), request_id)
    except (aiohttp.ClientConnectionError, OSError) as exc:
        return _observe(start, Outcome.CONNECT, _describe(exc), request_id)
    except Exception as exc:
        # The contract: a target's failure is classified, never raised to the scheduler.
        return _observe(start, Outcome.ERROR, _describe(exc), request_id)
    latency_s = (time.perf_counter_ns() - start) / _NS_PER_S
    if status not in target.expect_status:
        return Observation(latency_s, Outcome.STATUS, f"status {status}", request_id)
    if target.expect_body is not None and target.expect_body.encode() not in body:
        detail = f"body lacks {target.expect_body!r}"
        return Observation(latency_s, Outcome.BODY, detail[:_DETAIL_MAX], request_id)
    return Observation(latency_s, Outcome.OK, "", request_id)


class HttpProbe:
    """Times one HTTP call over the daemon's shared keep-alive session."""

    def __init__(self, settings: HttpProbeSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session

    async def observe(self) -> Observation:
        """Make one call with a fresh correlation id and classify the answer."""
        return await http_exchange(
            self.session, self.settings, uuid.uuid4().hex, self.settings.timeout
        )

    async def aclose(self) -> None:
        """Nothing to release: the session belongs to ``ProbeResources``."""


def _observe(start_ns: int, outcome: Outcome, detail: str, request_id: str) -> Observation:
    return Observation((time.perf_counter_ns() - start_ns) / _NS_PER_S, outcome, detail, request_id)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return detail[:_DETAIL_MAX]
