"""The wire format of a simulated online message, shared by the MQTT probe and any
responder (the simulator, or a real institution's echo service).

Request, published on the request topic::

    {"id": "<correlation id>", "sent_at": <UTC epoch seconds>, "reply_to": "<topic>",
     "pad": "<optional filler>"}

Reply, published on ``reply_to``::

    {"id": "<same correlation id>", "status": "ok" | "error", "handled_s": <server time>,
     "detail": "<why, when status is error>"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class WireError(ValueError):
    """A payload that is not a valid request or reply."""


@dataclass(frozen=True, slots=True)
class Request:
    """A simulated online message."""

    id: str
    sent_at: float
    reply_to: str
    pad: str = ""

    def encode(self) -> bytes:
        """Serialise to the JSON payload."""
        body: dict[str, Any] = {"id": self.id, "sent_at": self.sent_at, "reply_to": self.reply_to}
        if self.pad:
            body["pad"] = self.pad
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes | bytearray | str) -> Request:
        """Parse a request payload; raise ``WireError`` when it is not one."""
        body = _object(payload)
        try:
            return cls(
                id=str(body["id"]),
                sent_at=float(body["sent_at"]),
                reply_to=str(body["reply_to"]),
                pad=str(body.get("pad", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"not a request: {exc}") from None


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a simulated online message."""

    id: str
    status: str = "ok"
    handled_s: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the responder processed the message."""
        return self.status == "ok"

    def encode(self) -> bytes:
        """Serialise to the JSON payload."""
        body: dict[str, Any] = {"id": self.id, "status": self.status, "handled_s": self.handled_s}
        if self.detail:
            body["detail"] = self.detail
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes | bytearray | str) -> Reply:
        """Parse a reply payload; raise ``WireError`` when it is not one."""
        body = _object(payload)
        try:
            return cls(
                id=str(body["id"]),
                status=str(body.get("status", "ok")),
                handled_s=float(body.get("handled_s", 0.0)),
                detail=str(body.get("detail", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"not a reply: {exc}") from None


def _object(payload: bytes | bytearray | str) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("not a JSON object")
    return body
