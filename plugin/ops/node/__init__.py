"""A real single-node OpenSearch for development, tests and CI, built from Maven Central (and
the LTR plugin from a folder the user names).

``LocalNode(NodeConfig(port=9200)).up()`` fetches (once), assembles, starts and waits until
every primary is assigned; ``down()`` stops only the process that ``up()`` started. The steps
live in their own modules: ``bom`` (what), ``fetch`` (download), ``assemble`` (build the
home), ``java`` (which runtime), ``process`` (run and stop).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from ltrr.plugin.errors import ClusterUnavailable, PortInUse
from ltrr.plugin.ops.cluster import ClusterInfo
from ltrr.plugin.ops.node import process, security
from ltrr.plugin.ops.node.assemble import assemble, configure
from ltrr.plugin.ops.node.bom import PLUGINS, SECURED_PLUGINS
from ltrr.plugin.ops.node.config import NodeConfig
from ltrr.plugin.ops.node.fetch import fetch_artifacts
from ltrr.plugin.ops.node.java import find_java_home
from ltrr.plugin.ops.node.lock import exclusive

__all__ = ["LocalNode", "NodeConfig"]

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class LocalNode:
    def __init__(self, config: NodeConfig | None = None) -> None:
        self.config = config or NodeConfig()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.config.url

    def pid(self) -> int | None:
        return process.owned_pid(self.config)

    def is_running(self) -> bool:
        return self.pid() is not None

    def _lock(self) -> AbstractContextManager[None]:
        return exclusive(self.config.node_dir.with_name(f"{self.config.port}.lock"))

    def up(self, say: Say = _quiet) -> ClusterInfo:
        """Start the node unless it already runs; return once every primary is assigned."""
        with self._lock():
            return self._up(say)

    def _up(self, say: Say) -> ClusterInfo:
        config = self.config
        pid = self.pid()
        if pid is not None:
            say(f"OpenSearch already running at {config.url} (pid {pid})")
            process.wait_green(config, None, config.start_timeout)
            process.settle_single_node(config)
            return ClusterInfo.fetch(process.cluster(config))
        if _port_taken(config.port):
            raise PortInUse(
                f"something this tool did not start listens at {config.url}; stop it, pick "
                "another --port, or point OPENSEARCH_URL at it to use it as it is"
            )
        if _port_taken(config.transport_port):
            raise PortInUse(
                f"port {config.transport_port}, this node's transport port (--port + 100), is "
                "taken; stop what listens there or pick another --port"
            )
        began = time.monotonic()
        java_home = find_java_home()
        plugins = SECURED_PLUGINS if config.security else PLUGINS
        artifacts = fetch_artifacts(config.cache_dir, config.plugin_dir, plugins=plugins, say=say)
        for name, reason in artifacts.missing.items():
            say(f"{name} not installed: {reason}")
        if assemble(artifacts, config.home, java_home):
            say(f"Assembled OpenSearch in {config.home}")
        extra = None
        if config.security:
            if security.provision(config, java_home):
                say(f"Made the CA, certificates and users' passwords in {config.security_dir}")
            extra = security.install(config)
        for folder in (config.data, config.logs):
            folder.mkdir(parents=True, exist_ok=True)
        configure(
            config.home,
            port=config.port,
            transport_port=config.transport_port,
            data=config.data,
            logs=config.logs,
            heap=config.heap,
            extra=extra,
        )
        if config.security:
            security.restrict(config)
        user = process.node_user()
        if user is not None:
            process.ensure_user(user)
            process.hand_over(config, user)
        self._proc = process.start(config, java_home, user)
        say(
            f"Starting OpenSearch at {config.url} (pid {self._proc.pid})"
            + (f" as {user}" if user else "")
        )
        process.wait_green(config, self._proc, config.start_timeout)
        process.settle_single_node(config)
        if config.security:
            process.check_users(config)
        say(f"OpenSearch is up after {time.monotonic() - began:.1f}s")
        return ClusterInfo.fetch(process.cluster(config))

    def down(self, say: Say = _quiet) -> bool:
        """Stop the node this tool started; False if none was running."""
        with self._lock():
            return self._down(say)

    def _down(self, say: Say) -> bool:
        pid = self.pid()
        if pid is None:
            say(f"No OpenSearch started by ltrr is running for port {self.config.port}")
            return False
        process.stop(self.config, pid, self._proc)
        self._proc = None
        say(f"Stopped OpenSearch (pid {pid})")
        return True

    def status(self) -> str:
        pid = self.pid()
        head = [
            f"node:         {'running, pid ' + str(pid) if pid else 'not running'}",
            f"home:         {self.config.home}",
            f"logs:         {self.config.logs}",
        ]
        if pid is None:
            return "\n".join(head)
        if self.config.security:
            head += [
                f"CA:           {security.ca_file(self.config)}",
                f"users:        {', '.join(security.USERS)} "
                f"(passwords in {self.config.security_dir / 'users.json'})",
            ]
        try:
            report = ClusterInfo.fetch(process.cluster(self.config, timeout=10)).report()
        except ClusterUnavailable as exc:
            report = f"cluster:      not answering yet ({exc})"
        return "\n".join([*head, report])

    def log_lines(self, lines: int = 50) -> str:
        return process.log_tail(self.config, lines)

    def follow_log(self, poll: float = 0.5) -> Iterator[str]:
        """Yield lines appended to the server log, like ``tail -f``."""
        path: Path = self.config.server_log
        while not path.is_file():  # a node that is still being set up has no log yet
            time.sleep(poll)
        with path.open(errors="replace") as log:
            log.seek(0, 2)
            while True:
                line = log.readline()
                if line:
                    yield line
                else:
                    time.sleep(poll)


def _port_taken(port: int) -> bool:
    """Anything listening counts, HTTP or not: OpenSearch could not bind the port either way."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False
