"""Listening: one socket, bound once, shared by the proxy's own worker processes only.

``SO_REUSEPORT`` would let any other process (a second ``ltrr serve``, say) bind the same port
and silently take half the connections. Instead the parent binds the port once (a port that is
taken is an error), and ``--workers N`` starts N processes that inherit that very socket and
accept from it. Each worker is a fresh interpreter (no fork of a loaded runtime), told which
socket and index it has through the environment, and where the workers' metrics files go
(``PROMETHEUS_MULTIPROC_DIR``, emptied for each start), so that any worker's
``/_ltrr/metrics`` answers for all of them.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ltrr.plugin.errors import PortInUse
from ltrr.plugin.runtime import metrics

LISTEN_FD_ENV = "LTRR_LISTEN_FD"
WORKER_ENV = "LTRR_WORKER"
BACKLOG = 1024


def bind(host: str, port: int) -> socket.socket:
    """The listening socket; a port another process holds is refused, never shared."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"{host}:{port} is already in use by another process; stop it, or choose "
                "another --listen (several workers of one proxy: --workers N)"
            ) from None
        raise
    sock.setblocking(False)
    return sock


def inherited() -> tuple[socket.socket, int] | None:
    """In a worker: the parent's listening socket and this worker's index."""
    fd = os.environ.get(LISTEN_FD_ENV)
    if not fd:
        return None
    sock = socket.socket(fileno=int(fd))
    sock.setblocking(False)
    return sock, int(os.environ.get(WORKER_ENV, "0"))


def worker_data_dir(data_dir: Path, index: int, workers: int) -> Path:
    """Each worker has its own event log (a data directory is locked by one process)."""
    return data_dir if workers == 1 else data_dir / f"worker-{index}"


def run_workers(sock: socket.socket, workers: int, argv: Sequence[str]) -> int:
    """Start ``workers`` copies of this command on ``sock``; pass signals on; wait for them.

    Returns the first non-zero exit code (the others are stopped then), else 0."""
    folder, made = metrics.multiprocess_dir()
    try:
        return _run(sock, workers, argv, folder)
    finally:
        if made:
            metrics.remove_dir(folder)


def _run(sock: socket.socket, workers: int, argv: Sequence[str], folder: Path) -> int:
    fd = sock.fileno()
    children: list[subprocess.Popen[bytes]] = []
    for index in range(workers):
        env = {
            **os.environ,
            LISTEN_FD_ENV: str(fd),
            WORKER_ENV: str(index),
            metrics.MULTIPROC_ENV: str(folder),
        }
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "ltrr.plugin.ops.cli", *argv], env=env, pass_fds=(fd,)
            )
        )
    sock.close()  # the workers hold it now

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = 0
    pending = list(children)
    while pending:
        pid, status = os.wait()
        done = next((c for c in pending if c.pid == pid), None)
        if done is None:
            continue
        pending.remove(done)
        metrics.worker_exited(pid, folder)
        done.returncode = os.waitstatus_to_exitcode(status)
        if done.returncode != 0 and code == 0:
            code = done.returncode
            forward(signal.SIGTERM, None)  # one worker failing stops the proxy
    return code
