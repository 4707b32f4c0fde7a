"""TLS for the probes' connections: the broker's MQTT connection and HTTPS targets, with a
custom CA bundle and a client certificate (mutual TLS), as a network between institutions
commonly requires. One ``ssl.SSLContext`` per settings, built once."""

from __future__ import annotations

import ssl
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


class TlsSettings(BaseModel):
    """How a probe connection verifies its peer and proves who it is."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: CA bundle (PEM) the peer's certificate must chain to; None: the system's CAs.
    ca_file: str | None = None
    #: Client certificate (PEM) and its key, for peers that require one.
    cert_file: str | None = None
    key_file: str | None = None
    #: Accept any certificate and name (for tests of a lab setup only; logged at start).
    insecure_skip_verify: bool = False
    min_version: Literal["1.2", "1.3"] = "1.2"

    @model_validator(mode="after")
    def _files(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give cert_file and key_file together")
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"{name}: no file at {value}")
        return self


#: The ``min_version`` settings (probe clients and the daemon's own server share them).
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@cache
def ssl_context(settings: TlsSettings) -> ssl.SSLContext:
    """The client context of ``settings`` (cached: one per distinct settings)."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    context.minimum_version = TLS_VERSIONS[settings.min_version]
    if settings.cert_file is not None:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    if settings.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


__all__ = ["TLS_VERSIONS", "TlsSettings", "ssl_context"]
