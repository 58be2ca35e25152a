"""Where a local node keeps its downloads, home, data and logs, and how it is sized."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

NODE_USER = "ltrr-opensearch"
_HEAP = re.compile(r"^\d+[mMgG]$")


def default_cache_dir() -> Path:
    """Downloads, shared by every node on this machine (``LTRR_CACHE_DIR`` overrides)."""
    if os.environ.get("LTRR_CACHE_DIR"):
        return Path(os.environ["LTRR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ltrr"


def default_state_dir() -> Path:
    """Node homes, data and logs (``LTRR_STATE_DIR`` overrides).

    As root the node runs as a dedicated user (OpenSearch refuses root), which cannot enter
    ``/root``; so root's nodes live under ``/var/lib/ltrr``.
    """
    if os.environ.get("LTRR_STATE_DIR"):
        return Path(os.environ["LTRR_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/ltrr")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ltrr"


def default_plugin_dir() -> Path | None:
    """Where plugin zips that Maven Central does not serve are found (``LTRR_PLUGIN_DIR``)."""
    value = os.environ.get("LTRR_PLUGIN_DIR")
    return Path(value) if value else None


# The transport port sits this far above the HTTP port, as 9300 does above 9200: pinned, so
# that a second node's HTTP port can never collide with the first node's transport.
TRANSPORT_OFFSET = 100


@dataclass(frozen=True)
class NodeConfig:
    port: int = 9200
    heap: str = "1g"
    start_timeout: float = 180.0
    cache_dir: Path = field(default_factory=default_cache_dir)
    state_dir: Path = field(default_factory=default_state_dir)
    plugin_dir: Path | None = field(default_factory=default_plugin_dir)
    # The security plugin, TLS on HTTP and transport, and fixed users with different index
    # permissions (see ``security``): to prove the proxy against OpenSearch's own access
    # control. Such a node installs no other plugin and has a state folder of its own.
    security: bool = False

    def __post_init__(self) -> None:
        if not 1024 <= self.port <= 65535 - TRANSPORT_OFFSET:
            raise ValueError(
                f"port must be between 1024 and {65535 - TRANSPORT_OFFSET}, not {self.port}"
            )
        if not _HEAP.match(self.heap):
            raise ValueError(f"heap must look like 512m or 2g, not {self.heap!r}")
        if self.start_timeout <= 0:
            raise ValueError(f"start_timeout must be positive, not {self.start_timeout}")

    @property
    def transport_port(self) -> int:
        return self.port + TRANSPORT_OFFSET

    @property
    def url(self) -> str:
        return f"{'https' if self.security else 'http'}://127.0.0.1:{self.port}"

    @property
    def node_dir(self) -> Path:
        # Apart from a plain node's on the same port: its data holds the security index.
        return (
            self.state_dir / "nodes" / (f"{self.port}-secured" if self.security else str(self.port))
        )

    @property
    def security_dir(self) -> Path:
        """The CA, the certificates and the users' passwords: kept across rebuilds of the
        home, since the security index in ``data`` was initialised with them."""
        return self.node_dir / "security"

    @property
    def home(self) -> Path:
        return self.node_dir / "home"

    @property
    def data(self) -> Path:
        return self.node_dir / "data"

    @property
    def logs(self) -> Path:
        return self.node_dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "opensearch.pid"

    @property
    def console_log(self) -> Path:
        return self.logs / "console.log"

    @property
    def server_log(self) -> Path:
        # OpenSearch names its main log after the cluster (see assemble.configure).
        return self.logs / "ltrr-local.log"
