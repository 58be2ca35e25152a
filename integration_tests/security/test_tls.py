"""The proxy talks HTTPS to the node and verifies its certificate: a node it cannot verify
gets nothing from it, not even the caller's credentials, and the caller gets a 502."""

from __future__ import annotations

import pytest
import requests

from integration_tests.security.conftest import SecuredNode, Targets, through
from ltrr.plugin.ops.node.tls import make_ca


def test_the_node_speaks_only_https_and_the_proxy_reaches_it_with_its_ca(
    proxy, secured: SecuredNode, targets: Targets
) -> None:
    assert secured.url.startswith("https://")
    plain = secured.url.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):  # the node closes a plain-HTTP connection
        requests.get(plain, timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(secured.url, timeout=10)  # the system store does not know this CA
    reply = through(proxy, secured, "GET", f"/{targets.a}/_doc/zorblat-dumont", "alice")
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("trust", ["system store", "another CA"])
def test_a_node_whose_certificate_does_not_verify_gets_nothing(
    start_secured_proxy, secured: SecuredNode, targets: Targets, tmp_path, trust: str
) -> None:
    ca = None
    if trust == "another CA":
        ca = make_ca(tmp_path / "other", [("O", "elsewhere"), ("CN", "not the node's CA")]).cert
    log = tmp_path / "proxy.log"
    with start_secured_proxy(log, ca=ca) as refusing:
        calls = [
            ("GET", f"/{targets.a}/_doc/zorblat-dumont", None),
            ("POST", f"/{targets.a}/_search", {"query": {"match": {"name": "zorblat"}}}),
            ("PUT", f"/{targets.a}/_doc/tls-probe?refresh=true", {"name": "must not arrive"}),
        ]
        for method, path, body in calls:
            reply = through(refusing, secured, method, path, "alice", json=body)
            assert reply.status_code == 502, (method, path, reply.text)
            error = reply.json()["error"]
            assert error["type"] == "proxy_exception"
            assert reply.json()["status"] == 502
            assert "127.0.0.1:9210" not in reply.text
            assert "hits" not in reply.json()
    assert secured.direct("GET", f"/{targets.a}/_doc/tls-probe").status_code == 404
    assert "certificate verify failed" in log.read_text()
