"""A throw-away self-signed certificate for 127.0.0.1, made with the ``openssl`` command."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SelfSigned:
    """A certificate and its key, valid for 127.0.0.1 and localhost."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts only this certificate (hostname checked)."""
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed(workdir: Path) -> SelfSigned:
    """Generate a P-256 self-signed certificate in ``workdir``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed: run `make test` (it installs it)")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return SelfSigned(cert=cert, key=key)


@dataclass(frozen=True)
class TestPki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and
    an unrelated CA (what a client trusting the wrong authority holds)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path

    def server_context(self, require_client: bool = True) -> ssl.SSLContext:
        """A server context presenting the server certificate, requiring a client
        certificate signed by the CA when ``require_client``."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        context.load_cert_chain(self.server_cert, self.server_key)
        context.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_NONE
        return context


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed: run `make test` (it installs it)")
    subprocess.run([openssl, *args], check=True, capture_output=True)


def _ca(workdir: Path, name: str) -> tuple[Path, Path]:
    cert, key = workdir / f"{name}.pem", workdir / f"{name}.key"
    _openssl(
        "req", "-x509", "-nodes", "-days", "1",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _signed(workdir: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    cert, key, request = workdir / f"{name}.pem", workdir / f"{name}.key", workdir / f"{name}.csr"
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    ext = workdir / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "1", "-out", str(cert), "-extfile", str(ext),
    )  # fmt: skip
    return cert, key


def test_pki(workdir: Path) -> TestPki:
    """Generate the PKI in ``workdir`` with the ``openssl`` command."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca = _ca(workdir, "test-ca")
    other, _ = _ca(workdir, "other-ca")
    server = _signed(
        workdir,
        "server",
        ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    client = _signed(workdir, "client", ca, "extendedKeyUsage=clientAuth\n")
    return TestPki(ca[0], server[0], server[1], client[0], client[1], other)


test_pki.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test
TestPki.__test__ = False  # type: ignore[attr-defined]
