"""What an OpenSearch cluster is: version, health, modules and plugins.

Used by ``ltrr opensearch status``, by the test session to learn what the node can do, and by
any feature that needs a plugin (k-NN, LTR) to say so clearly instead of failing deep inside a
query. The ``Cluster`` client is injected, so unit tests need no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ltrr.plugin.errors import ClusterUnavailable, PluginNotInstalled
from ltrr.plugin.ops.client import Cluster

# Names as a cluster lists them in _cat/plugins.
KNN_PLUGIN = "opensearch-knn"
LTR_PLUGIN = "opensearch-ltr"
NEURAL_PLUGIN = "opensearch-neural-search"
SECURITY_PLUGIN = "opensearch-security"


@dataclass(frozen=True)
class ClusterInfo:
    url: str
    version: str
    distribution: str
    health: str
    modules: tuple[str, ...]
    plugins: dict[str, str]

    @classmethod
    def fetch(cls, cluster: Cluster | str, timeout: float = 10.0) -> ClusterInfo:
        """``cluster`` is a client, or a URL to make one for."""
        http = cluster if isinstance(cluster, Cluster) else Cluster(cluster, timeout=timeout)
        url = http.url
        root = _get(http, "/", timeout)
        if not isinstance(root, dict) or "version" not in root:
            raise ClusterUnavailable(f"{url} answered, but not like OpenSearch: {root}")
        health = _get(http, "/_cluster/health", timeout)
        nodes = _get(http, "/_nodes/plugins", timeout).get("nodes", {})
        modules: set[str] = set()
        plugins: dict[str, str] = {}
        for node in nodes.values():
            modules.update(m["name"] for m in node.get("modules", []))
            plugins.update({p["name"]: p["version"] for p in node.get("plugins", [])})
        return cls(
            url=url,
            version=root["version"]["number"],
            distribution=root["version"].get("distribution", "elasticsearch"),
            health=health.get("status", "unknown"),
            modules=tuple(sorted(modules)),
            plugins=dict(sorted(plugins.items())),
        )

    def has_plugin(self, name: str) -> bool:
        return name in self.plugins

    def require(self, name: str) -> None:
        """Raise a clear error when a feature's plugin is absent."""
        if not self.has_plugin(name):
            what = {
                LTR_PLUGIN: "LTR plugin",
                KNN_PLUGIN: "k-NN plugin",
                NEURAL_PLUGIN: "neural-search plugin",
            }.get(name, name)
            raise PluginNotInstalled(
                f"{what} not installed: {self.url} lists plugins {sorted(self.plugins) or 'none'}"
            )

    def report(self) -> str:
        """Human-readable status, one fact a line."""
        lines = [
            f"url:          {self.url}",
            f"version:      {self.distribution} {self.version}",
            f"health:       {self.health}",
            f"modules:      {', '.join(self.modules) or 'none'}",
            "plugins:      " + (", ".join(f"{n} {v}" for n, v in self.plugins.items()) or "none"),
        ]
        for name, what in ((KNN_PLUGIN, "k-NN"), (NEURAL_PLUGIN, "neural"), (LTR_PLUGIN, "LTR")):
            state = "installed" if self.has_plugin(name) else f"{what} plugin not installed"
            lines.append(f"{what + ':':<14}{state}")
        return "\n".join(lines)


def _get(http: Cluster, path: str, timeout: float) -> dict[str, Any]:
    status, body = http.request("GET", path, timeout=timeout)
    if status != 200:
        raise ClusterUnavailable(f"GET {path} on {http.url} gave {status}: {str(body)[:500]}")
    return body if isinstance(body, dict) else {"raw": body}
