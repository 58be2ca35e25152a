"""Catalogs reload on change and on SIGHUP without dropping a request; a bad one is refused."""

from __future__ import annotations

import signal
import threading
import time

import requests

CATALOG = """\
target: {alias}
budget: 20
policy: {{name: static}}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {{fields: ["name^3", "tags"]}}
    size: {{min: 5, max: 10}}
{extra}fusion: {{method: rrf, k: 60}}
fallback: [{{arm: lexical, size: 5}}]
"""
POPULAR = """\
  - name: popular
    template: rank_feature.json.j2
    params: {field: popularity, text_fields: [name, tags]}
    size: {min: 5, max: 10}
"""


def _search(url, alias):
    response = requests.post(
        f"{url}/{alias}/_search", json={"ext": {"ltrr": {"query": "electronic"}}}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["ext"]["ltrr"]


def test_reload_on_change_and_sighup_keeps_serving(client, music, start_proxy, tmp_path):
    alias = f"{music.name}-reload"
    client.indices.put_alias(index=music.name, name=alias)
    path = tmp_path / "reload.yml"
    path.write_text(CATALOG.format(alias=alias, extra=""))
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        before = _search(proxy.url, alias)
        assert set(before["arms"]) == {"lexical"}

        statuses: list[int] = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                reply = requests.post(
                    f"{proxy.url}/{alias}/_search",
                    json={"ext": {"ltrr": {"query": "jazz"}}},
                    timeout=30,
                )
                statuses.append(reply.status_code)

        worker = threading.Thread(target=load)
        worker.start()
        try:
            time.sleep(0.3)
            path.write_text(CATALOG.format(alias=alias, extra=POPULAR))
            deadline = time.monotonic() + 15
            while set(_search(proxy.url, alias)["arms"]) != {"lexical", "popular"}:
                assert time.monotonic() < deadline, "the changed catalog was not picked up"
                time.sleep(0.2)
            after = _search(proxy.url, alias)
            assert after["catalog"] != before["catalog"]

            # A catalog that no longer validates is refused; the previous one keeps serving.
            path.write_text(
                CATALOG.format(alias=alias, extra=POPULAR).replace("budget: 20", "budget: -1")
            )
            proxy.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while "catalog reload failed" not in proxy.log.read_text():
                assert time.monotonic() < deadline, proxy.log.read_text()
                time.sleep(0.2)
            assert _search(proxy.url, alias)["catalog"] == after["catalog"]
            assert f"{path}:2: budget:" in proxy.log.read_text()
        finally:
            stop.set()
            worker.join()
    assert statuses
    assert set(statuses) == {200}
