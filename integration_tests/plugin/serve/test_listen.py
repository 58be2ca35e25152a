"""The proxy's port is its own: a second ``ltrr serve`` on it is refused, while ``--workers``
shares one socket among the proxy's own processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from integration_tests.plugin.conftest import _free_port, catalog_text, model_dir


def _serve(catalog, opensearch_url, port, data_dir, *extra) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ltrr.plugin.ops.cli",
            "serve",
            "--catalog",
            str(catalog),
            "--opensearch",
            opensearch_url,
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LTRR_MODEL_DIR": str(model_dir())},
    )


def _ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_ltrr/stats", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_a_second_proxy_on_a_taken_port_is_refused(opensearch_url, music, tmp_path):
    catalog = tmp_path / "static.yml"
    catalog.write_text(catalog_text(f"{music.name}-static", "{name: static}"))
    port = _free_port()
    first = _serve(catalog, opensearch_url, port, tmp_path / "a")
    try:
        _ready(f"http://127.0.0.1:{port}")
        second = _serve(catalog, opensearch_url, port, tmp_path / "b")
        output, _ = second.communicate(timeout=60)
        assert second.returncode != 0
        assert b"already in use" in output
        assert first.poll() is None  # the first one keeps its port, and every connection
        pids = {
            requests.get(f"http://127.0.0.1:{port}/_ltrr/stats", timeout=10).json()["pid"]
            for _ in range(20)
        }
        assert pids == {first.pid}
    finally:
        first.terminate()
        first.wait(timeout=30)


def test_workers_share_one_socket_and_stop_together(opensearch_url, music, tmp_path):
    catalog = tmp_path / "static.yml"
    catalog.write_text(catalog_text(f"{music.name}-static", "{name: static}"))
    port = _free_port()
    parent = _serve(catalog, opensearch_url, port, tmp_path / "data", "--workers", "2")
    try:
        url = f"http://127.0.0.1:{port}"
        _ready(url)
        pids = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:  # a new connection each time
            pids.add(requests.get(f"{url}/_ltrr/stats", timeout=10).json()["pid"])
            answer = requests.post(
                f"{url}/{music.name}-static/_search",
                json={"ext": {"ltrr": {"query": "radiohead"}}},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
        assert len(pids) == 2
        assert parent.pid not in pids  # the parent only holds the socket for its workers
        for pid in pids:
            assert (tmp_path / "data" / "worker-0").is_dir()
            assert (tmp_path / "data" / "worker-1").is_dir()
            os.kill(pid, 0)  # alive
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.communicate(timeout=60)
    assert parent.returncode == 0
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} outlived its parent")
