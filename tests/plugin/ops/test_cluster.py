import json
from types import SimpleNamespace

import pytest
from opensearchpy.exceptions import ConnectionError as ClientConnectionError

from ltrr.plugin.errors import ClusterUnavailable, PluginNotInstalled
from ltrr.plugin.ops.cluster import ClusterInfo
from tests.plugin.ops._scripted import scripted_cluster

ROOT = {"name": "n", "version": {"distribution": "opensearch", "number": "2.19.1"}}
HEALTH = {"status": "green"}
NODES = {
    "nodes": {
        "a": {
            "modules": [{"name": "lang-painless"}, {"name": "analysis-common"}],
            "plugins": [{"name": "opensearch-knn", "version": "2.19.1.0"}],
        }
    }
}


class Canned:
    """A scripted cluster: answers by path, or refuses like a closed port."""

    def __init__(self, routes):
        self.routes = routes

    def request(self, method, url, data=None, headers=None, timeout=None):
        path = url.split("9200", 1)[1]
        if path not in self.routes:
            raise ClientConnectionError("N/A", f"refused {path}", None)
        status, body = self.routes[path]
        return SimpleNamespace(status_code=status, content=json.dumps(body).encode())


def session(routes):
    return scripted_cluster(Canned(routes))


def info(**overrides):
    routes = {"/": (200, ROOT), "/_cluster/health": (200, HEALTH), "/_nodes/plugins": (200, NODES)}
    routes.update(overrides)
    return ClusterInfo.fetch(session(routes))


def test_reads_version_health_modules_and_plugins():
    cluster = info()
    assert cluster.version == "2.19.1"
    assert cluster.distribution == "opensearch"
    assert cluster.health == "green"
    assert cluster.modules == ("analysis-common", "lang-painless")
    assert cluster.plugins == {"opensearch-knn": "2.19.1.0"}


def test_missing_ltr_is_reported_cleanly():
    cluster = info()
    cluster.require("opensearch-knn")
    with pytest.raises(
        PluginNotInstalled, match=r"^LTR plugin not installed: http://os:9200 lists"
    ):
        cluster.require("opensearch-ltr")
    report = cluster.report()
    assert "LTR:          LTR plugin not installed" in report
    assert "k-NN:         installed" in report
    assert "plugins:      opensearch-knn 2.19.1.0" in report


def test_something_that_is_not_opensearch():
    with pytest.raises(ClusterUnavailable, match="not like OpenSearch"):
        info(**{"/": (200, {"hello": "world"})})


def test_errors_and_silence_become_cluster_unavailable():
    with pytest.raises(ClusterUnavailable, match="gave 401"):
        info(**{"/": (401, {"error": "unauthorized"})})
    with pytest.raises(ClusterUnavailable, match="did not answer"):
        ClusterInfo.fetch(session({}))
