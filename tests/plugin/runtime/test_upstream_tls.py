"""The proxy's TLS to OpenSearch: always verified, against the given CA bundle or the system's.

The handshakes run against a real HTTPS server on loopback whose certificates the real
``openssl`` made (the secured node's own tooling), so what is checked is what a node does.
"""

import asyncio
import shutil
import ssl

import pytest
from aiohttp import web

from ltrr.plugin.ops.node.tls import make_ca, make_cert
from ltrr.plugin.runtime.upstream import (
    AiohttpTransport,
    UpstreamError,
    UpstreamTLSError,
    make_session,
    upstream_ssl,
)

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder / "ca", [("O", "test"), ("CN", "test CA")])
    other = make_ca(folder / "other", [("O", "test"), ("CN", "another CA")])
    good = make_cert(ca, folder, "good", [("CN", "node")], server=True, hosts=["127.0.0.1"])
    wrong_name = make_cert(
        ca, folder, "wrong-name", [("CN", "elsewhere")], server=True, hosts=["elsewhere.test"]
    )
    return {"ca": ca.cert, "other": other.cert, "good": good, "wrong_name": wrong_name}


def test_without_a_bundle_the_system_store_is_used_and_verification_is_on():
    context = upstream_ssl()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


@needs_openssl
def test_a_bundle_is_the_only_trust_and_verification_stays_on(pki):
    context = upstream_ssl(pki["ca"])
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    subjects = [dict(x[0] for x in ca["subject"]) for ca in context.get_ca_certs()]
    assert subjects == [{"organizationName": "test", "commonName": "test CA"}]


def test_a_missing_bundle_is_a_clear_error(tmp_path):
    with pytest.raises(UpstreamTLSError, match=r"no-such\.pem is not a readable file"):
        upstream_ssl(tmp_path / "no-such.pem")


def test_a_file_that_holds_no_certificate_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(UpstreamTLSError, match="holds no usable PEM certificate"):
        upstream_ssl(junk)


async def _get(served, client_tls):
    """Start an HTTPS server with ``served`` (cert, key), GET / through the proxy's
    transport with ``client_tls``; the reply's status, or the error."""
    app = web.Application()

    async def root(_request):
        return web.json_response({"ok": True})

    app.router.add_get("/", root)
    runner = web.AppRunner(app)
    await runner.setup()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(served.cert, served.key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    session = make_session(tls=client_tls)
    try:
        transport = AiohttpTransport(f"https://127.0.0.1:{port}", session)
        reply = await transport.request("GET", "/", headers={}, body=None, timeout=10)
        return reply.status
    except UpstreamError as exc:
        return exc
    finally:
        await session.close()
        await runner.cleanup()


@needs_openssl
def test_a_node_signed_by_the_given_ca_is_reached(pki):
    assert asyncio.run(_get(pki["good"], upstream_ssl(pki["ca"]))) == 200


@needs_openssl
@pytest.mark.parametrize(
    ("served", "trust", "why"),
    [
        ("good", None, "certificate verify failed"),  # a private CA is not in the system store
        ("good", "other", "certificate verify failed"),  # signed by a CA we were not given
        ("wrong_name", "ca", "IP address mismatch"),  # the right CA, but not this host
    ],
)
def test_a_node_whose_certificate_does_not_verify_is_refused(pki, served, trust, why):
    outcome = asyncio.run(_get(pki[served], upstream_ssl(pki[trust] if trust else None)))
    assert isinstance(outcome, UpstreamError)
    assert why in str(outcome)
