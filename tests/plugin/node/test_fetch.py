import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.node import fetch as fetch_module
from ltrr.plugin.node.bom import DISTRIBUTION, MODULES, PLUGINS
from ltrr.plugin.node.fetch import cache_root, fetch_artifacts

NS = {"m": "http://maven.apache.org/POM/4.0.0"}
FIELDS = ("artifactId", "version", "type", "outputDirectory")
NOT_FOUND = (
    "[INFO] Scanning for projects...\n"
    "[ERROR] Failed to execute goal: Could not find artifact org.opensearch:opensearch-ltr:zip\n"
    "[ERROR] \n"
)


class FakeMaven:
    """Plays Maven: writes every file a POM or a -Dartifact asks for, or fails like Maven."""

    def __init__(self, serve_optional=False, fail_required=False):
        self.calls = []
        self.serve_optional = serve_optional
        self.fail_required = fail_required

    def __call__(self, args, cwd):
        self.calls.append(args)
        if "-f" in args:
            if self.fail_required:
                return subprocess.CompletedProcess(args, 1, "[ERROR] Could not resolve\n", "")
            pom = ET.parse(args[args.index("-f") + 1])
            for item in pom.getroot().iterfind(".//m:artifactItem", NS):
                field = {k: item.findtext(f"m:{k}", namespaces=NS) for k in FIELDS}
                out = Path(field["outputDirectory"])
                out.mkdir(parents=True, exist_ok=True)
                name = f"{field['artifactId']}-{field['version']}.{field['type']}"
                (out / name).write_bytes(b"x")
            return subprocess.CompletedProcess(args, 0, "", "")
        if not self.serve_optional:
            return subprocess.CompletedProcess(args, 1, NOT_FOUND, "")
        coords = next(a for a in args if a.startswith("-Dartifact=")).split("=", 1)[1]
        _, artifact, version, packaging = coords.split(":")
        out = Path(next(a for a in args if a.startswith("-DoutputDirectory=")).split("=", 1)[1])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{artifact}-{version}.{packaging}").write_bytes(b"x")
        return subprocess.CompletedProcess(args, 0, "", "")


def test_first_fetch_downloads_everything_then_runs_offline(tmp_path):
    maven = FakeMaven()
    artifacts = fetch_artifacts(tmp_path, run=maven, say=lambda _: None)
    assert artifacts.distribution == cache_root(tmp_path) / "distribution" / DISTRIBUTION.filename
    assert artifacts.distribution.is_file()
    assert set(artifacts.modules) == {m.name for m in MODULES}
    assert all(p.is_file() for paths in artifacts.modules.values() for p in paths)
    assert len(artifacts.modules["lang-painless"]) == 8
    assert set(artifacts.plugins) == {"opensearch-knn"}
    assert "Could not find artifact" in artifacts.missing["opensearch-ltr"]
    assert "[ERROR] \n" not in artifacts.missing["opensearch-ltr"] + "\n"
    assert len(maven.calls) == 2

    again = fetch_artifacts(tmp_path, run=maven, say=lambda _: None)
    assert len(maven.calls) == 2, "a filled cache must not call Maven again"
    assert again == artifacts


def test_optional_plugin_served_by_maven_is_used(tmp_path):
    artifacts = fetch_artifacts(tmp_path, run=FakeMaven(serve_optional=True), say=lambda _: None)
    assert set(artifacts.plugins) == {p.name for p in PLUGINS}
    assert artifacts.missing == {}


def test_optional_plugin_zip_dropped_in_by_hand_counts(tmp_path):
    fetch_artifacts(tmp_path, run=FakeMaven(), say=lambda _: None)
    ltr = next(p for p in PLUGINS if p.name == "opensearch-ltr")
    (cache_root(tmp_path) / "plugins" / ltr.zip.filename).write_bytes(b"zip")
    artifacts = fetch_artifacts(tmp_path, run=FakeMaven(), say=lambda _: None)
    assert "opensearch-ltr" in artifacts.plugins
    assert "opensearch-ltr" not in artifacts.missing


def test_required_failure_reports_maven_errors(tmp_path):
    with pytest.raises(ProvisionError, match=r"could not fetch[\s\S]*Could not resolve"):
        fetch_artifacts(tmp_path, run=FakeMaven(fail_required=True), say=lambda _: None)
    # nothing was recorded as fetched, so the next run tries again
    with pytest.raises(ProvisionError):
        fetch_artifacts(tmp_path, run=FakeMaven(fail_required=True), say=lambda _: None)


def test_damaged_cache_is_reported_not_papered_over(tmp_path):
    artifacts = fetch_artifacts(tmp_path, run=FakeMaven(), say=lambda _: None)
    artifacts.modules["lang-mustache"][0].unlink()
    with pytest.raises(ProvisionError, match="missing from the cache"):
        fetch_artifacts(tmp_path, run=FakeMaven(), say=lambda _: None)


def test_pom_copies_each_artifact_to_its_own_folder(tmp_path):
    pom = ET.fromstring(fetch_module._pom(tmp_path))
    items = pom.findall(".//m:artifactItem", NS)
    expected = 1 + sum(len(m.jars) for m in MODULES) + sum(p.required for p in PLUGINS)
    assert len(items) == expected
    folders = {
        i.findtext("m:artifactId", namespaces=NS): i.findtext("m:outputDirectory", namespaces=NS)
        for i in items
    }
    assert folders["compiler"] == str(tmp_path / "modules" / "lang-mustache")
    assert folders["opensearch-knn"] == str(tmp_path / "plugins")
    assert "opensearch-ltr" not in folders


def test_missing_maven_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch_module.shutil, "which", lambda _: None)
    with pytest.raises(ProvisionError, match="Maven \\(mvn\\) is needed"):
        fetch_artifacts(tmp_path, say=lambda _: None)


def test_concurrent_first_runs_download_once(tmp_path):
    maven = FakeMaven()
    slow_calls = []

    def slow(args, cwd):
        slow_calls.append(args)
        time.sleep(0.2)
        return maven(args, cwd)

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(fetch_artifacts(tmp_path, run=slow, say=lambda _: None))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 3
    assert len(slow_calls) == 2
    assert results[0] == results[1] == results[2]
