"""A real ``ltrr serve`` process for the simulation: its own process, port and data directory.

The simulated users are clients like any other, so the proxy runs apart from them (the
latency a client sees includes the HTTP hop and the proxy's own event loop, uncontended by
the simulator's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from ltrr.plugin.errors import ClusterUnavailable, LtrrError
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.serve.server import ADMIN_TOKEN_ENV


class ProxyProcess:
    """Start with ``start()``; ``stop()`` sends SIGTERM so the proxy flushes what it learnt."""

    def __init__(
        self,
        catalogs: Sequence[Path],
        opensearch: str,
        listen: str,
        data_dir: Path,
        *,
        seed: int,
        merge_seconds: float = 2.0,
        log: Path,
        simulated_clock: bool = False,
    ) -> None:
        self.catalogs = list(catalogs)
        self.opensearch = opensearch
        self.listen = listen
        self.data_dir = data_dir
        self.seed = seed
        self.merge_seconds = merge_seconds
        self.log = log
        self.simulated_clock = simulated_clock
        self.url = f"http://{listen}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        command = [
            sys.executable,
            "-m",
            "ltrr.plugin.ops.cli",
            "serve",
            "--catalog",
            *map(str, self.catalogs),
            "--opensearch",
            self.opensearch,
            "--listen",
            self.listen,
            "--data-dir",
            str(self.data_dir),
            "--seed",
            str(self.seed),
            "--merge-seconds",
            str(self.merge_seconds),
            "--log-level",
            "warning",
        ]
        if self.simulated_clock:
            command.append("--simulated-clock")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ)
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LtrrError(
                    f"the proxy exited with {self._process.returncode}; see {self.log}:\n"
                    + self.log.read_text(errors="replace")[-2000:]
                )
            try:
                if Cluster(self.url, timeout=2).request("GET", "/_ltrr/stats")[0] == 200:
                    return
            except ClusterUnavailable:
                pass
            time.sleep(0.3)
        self.stop()
        raise LtrrError(f"the proxy did not answer within {timeout:.0f} s; see {self.log}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stats(self) -> dict[str, object]:
        reply: dict[str, object] = Cluster(self.url, timeout=10).ok("GET", "/_ltrr/stats")
        return reply

    def save_metrics(self, path: Path) -> Path:
        """The proxy's Prometheus exposition as it stands, kept once the proxy is gone."""
        token = os.environ.get(ADMIN_TOKEN_ENV)
        reply = requests.get(
            f"{self.url}/_ltrr/metrics",
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=30,
        )
        if reply.status_code != 200:
            raise LtrrError(f"{self.url}/_ltrr/metrics answered {reply.status_code}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(reply.content)
        return path

    def wait(self) -> None:
        """Until the proxy exits (``demo --serve``: Ctrl-C reaches the child too)."""
        if self._process is not None:
            self._process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
