"""TLS: both clients speak HTTPS to a gateway whose certificate they trust, and refuse one they
do not, before any request leaves.

The real gateway is HTTPS only; the simulator is plain HTTP, so a TLS-terminating proxy on
loopback stands in front of it with a certificate issued by a throw-away CA. The clients trust
that CA through `SSL_CERT_FILE`, which both honour: the Rust client's rustls (ring provider,
system roots read by rustls-native-certs) and httpx's `create_ssl_context`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from orderkit import ACCOUNT, requests, with_settings

from harness.errors import BrokerError
from harness.orders import ClientSettings, open_client
from harness.orders.python import transport
from harness.sim import Simulator

LOGIN = "/api/Auth/loginKey"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA (P-256, 1 day)."""
    d = tmp_path_factory.mktemp("tls")
    ca_key, ca, key, csr, cert = (
        d / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *curve,
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "1",
        "-subj",
        "/CN=harness test CA",
    )
    _openssl("req", *curve, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "1",
        "-extfile",
        str(ext),
    )
    other = d / "other.pem"  # a CA that signed nothing here
    _openssl(
        "req", "-x509", *curve, "-keyout", str(d / "other.key"), "-out", str(other), "-days", "1",
        "-subj", "/CN=another CA",
    )  # fmt: skip
    return {"ca": ca, "cert": cert, "key": key, "other": other}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
        writer.close()


@pytest.fixture
async def https_url(clean_sim: Simulator, certs: dict[str, Path]) -> AsyncIterator[str]:
    """`https://127.0.0.1:PORT`: TLS terminated here, bytes forwarded to the simulator."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["cert"], certs["key"])
    host, port = clean_sim.url.removeprefix("http://").rsplit(":", 1)

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", 0, ssl=context)
    async with server:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        server.close()


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Makes a client built from now on read its roots afresh (the Python client caches its
    TLS context per process)."""
    transport._tls_context.cache_clear()
    yield
    transport._tls_context.cache_clear()


async def test_https_to_a_trusted_gateway_works(
    impl: str,
    settings: ClientSettings,
    https_url: str,
    certs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    trusted: None,
    clean_sim: Simulator,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs["ca"]))
    async with open_client(with_settings(settings, base_url=https_url), impl) as client:  # type: ignore[arg-type]
        accounts = await client.accounts()
    assert ACCOUNT in [a.id for a in accounts]
    assert requests(clean_sim, LOGIN) == 1


async def test_an_untrusted_certificate_is_refused_before_any_request(
    impl: str,
    settings: ClientSettings,
    https_url: str,
    certs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    trusted: None,
    clean_sim: Simulator,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs["other"]))
    async with open_client(with_settings(settings, base_url=https_url), impl) as client:  # type: ignore[arg-type]
        with pytest.raises(BrokerError) as info:
            await client.accounts()
    assert "certificate" in str(info.value).lower(), str(info.value)
    assert requests(clean_sim, LOGIN) == 0
