"""Find a real OpenSearch for the integration tests, in a fixed order.

1. ``OPENSEARCH_URL``, when set: the user's own cluster, used as it is.
2. ``docker-compose.test.yml`` through pytest-docker, when a Docker engine answers.
3. Otherwise the local node built from Maven Central (``ltrr opensearch up``); started for this
   session and stopped at its end, unless it was already running.

Every test gets the cluster's URL and an opensearch-py client, and works in indices whose names
it owns, so a user's own cluster is never touched outside them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opensearchpy import OpenSearch

from ltrr.plugin.ops.cluster import ClusterInfo
from ltrr.plugin.ops.node import LocalNode, NodeConfig

ROOT = Path(__file__).resolve().parent.parent


def _docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "docker-compose.test.yml")


def _answers_green(url: str) -> bool:
    try:
        health = requests.get(f"{url}/_cluster/health", timeout=5)
    except requests.RequestException:
        return False
    return health.status_code == 200 and health.json().get("status") == "green"


@pytest.fixture(scope="session")
def opensearch_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if os.environ.get("OPENSEARCH_URL"):
        yield os.environ["OPENSEARCH_URL"].rstrip("/")
        return
    if _docker_engine_answers():
        services = request.getfixturevalue("docker_services")
        ip = request.getfixturevalue("docker_ip")
        url = f"http://{ip}:{services.port_for('opensearch', 9200)}"
        services.wait_until_responsive(timeout=300.0, pause=2.0, check=lambda: _answers_green(url))
        yield url
        return
    port = int(os.environ.get("LTRR_TEST_OPENSEARCH_PORT", "9200"))
    node = LocalNode(NodeConfig(port=port))
    already_running = node.is_running()
    node.up(say=print)
    try:
        yield node.url
    finally:
        if not already_running:
            node.down()


@pytest.fixture(scope="session")
def cluster(opensearch_url: str) -> ClusterInfo:
    return ClusterInfo.fetch(opensearch_url)


@pytest.fixture(scope="session")
def client(opensearch_url: str) -> Iterator[OpenSearch]:
    os_client = OpenSearch(hosts=[opensearch_url], timeout=60)
    yield os_client
    os_client.close()


@pytest.fixture
def index_name(client: OpenSearch) -> Iterator[str]:
    """A fresh index name owned by one test, deleted afterwards."""
    name = f"ltrr-it-{uuid.uuid4().hex[:12]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)
