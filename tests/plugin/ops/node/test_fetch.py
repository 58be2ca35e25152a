import dataclasses
import hashlib
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.ops.node import fetch as fetch_module
from ltrr.plugin.ops.node.bom import DISTRIBUTION, MODULES, PLUGINS
from ltrr.plugin.ops.node.fetch import cache_root, fetch_artifacts

NS = {"m": "http://maven.apache.org/POM/4.0.0"}
FIELDS = ("artifactId", "version", "type", "outputDirectory")
LTR_ZIP = "opensearch-ltr-2.19.1.0.zip"
FROM_MAVEN = {p.name for p in PLUGINS if p.from_maven}


class FakeMaven:
    """Plays Maven: writes every file a POM asks for, or fails like Maven."""

    def __init__(self, fail=False):
        self.calls = []
        self.fail = fail

    def __call__(self, args, cwd):
        self.calls.append(args)
        if self.fail:
            return subprocess.CompletedProcess(args, 1, "[ERROR] Could not resolve\n[ERROR] \n", "")
        pom = ET.parse(args[args.index("-f") + 1])
        for item in pom.getroot().iterfind(".//m:artifactItem", NS):
            field = {k: item.findtext(f"m:{k}", namespaces=NS) for k in FIELDS}
            out = Path(field["outputDirectory"])
            out.mkdir(parents=True, exist_ok=True)
            name = f"{field['artifactId']}-{field['version']}.{field['type']}"
            (out / name).write_bytes(b"x")
        return subprocess.CompletedProcess(args, 0, "", "")


def quiet(_):
    return None


def plugin_folder(tmp_path, content=b"ltr zip", sidecar=None):
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    (folder / LTR_ZIP).write_bytes(content)
    if sidecar is not None:
        (folder / f"{LTR_ZIP}.sha256").write_text(sidecar)
    return folder


def test_first_fetch_downloads_everything_then_runs_offline(tmp_path):
    maven = FakeMaven()
    artifacts = fetch_artifacts(tmp_path / "cache", run=maven, say=quiet)
    root = cache_root(tmp_path / "cache")
    assert artifacts.distribution == root / "distribution" / DISTRIBUTION.filename
    assert artifacts.distribution.is_file()
    assert set(artifacts.modules) == {m.name for m in MODULES}
    assert all(p.is_file() for paths in artifacts.modules.values() for p in paths)
    assert len(artifacts.modules["lang-painless"]) == 8
    assert set(artifacts.plugins) == FROM_MAVEN == {"opensearch-knn", "opensearch-neural-search"}
    assert len(maven.calls) == 1

    again = fetch_artifacts(tmp_path / "cache", run=maven, say=quiet)
    assert len(maven.calls) == 1, "a filled cache must not call Maven again"
    assert again == artifacts


def test_without_a_plugin_folder_the_ltr_plugin_is_one_clear_line(tmp_path):
    artifacts = fetch_artifacts(tmp_path / "cache", run=FakeMaven(), say=quiet)
    (reason,) = artifacts.missing.values()
    assert list(artifacts.missing) == ["opensearch-ltr"]
    assert "\n" not in reason
    assert "[ERROR]" not in reason
    assert "LTRR_PLUGIN_DIR" in reason
    assert "--plugin-dir" in reason
    empty = tmp_path / "empty"
    empty.mkdir()
    artifacts = fetch_artifacts(tmp_path / "cache", empty, run=FakeMaven(), say=quiet)
    assert artifacts.missing["opensearch-ltr"].startswith(f"{LTR_ZIP} is not in {empty};")


def test_a_zip_in_the_plugin_folder_is_checked_against_its_sha256(tmp_path):
    good = hashlib.sha256(b"ltr zip").hexdigest()
    folder = plugin_folder(tmp_path, sidecar=f"{good}  {LTR_ZIP}\n")
    artifacts = fetch_artifacts(tmp_path / "cache", folder, run=FakeMaven(), say=quiet)
    assert artifacts.plugins["opensearch-ltr"] == folder / LTR_ZIP
    assert artifacts.missing == {}

    (folder / LTR_ZIP).write_bytes(b"ltr zip, damaged")
    with pytest.raises(ProvisionError, match=f"has sha256 .* but {LTR_ZIP}.sha256 says {good}"):
        fetch_artifacts(tmp_path / "cache", folder, run=FakeMaven(), say=quiet)


def test_a_zip_without_a_sidecar_must_be_a_known_build(tmp_path, monkeypatch):
    folder = plugin_folder(tmp_path)
    with pytest.raises(ProvisionError, match=r"no known build, and there is no .*\.sha256"):
        fetch_artifacts(tmp_path / "cache", folder, run=FakeMaven(), say=quiet)
    ltr = next(p for p in PLUGINS if p.name == "opensearch-ltr")
    known = dataclasses.replace(ltr, known_sha256=(hashlib.sha256(b"ltr zip").hexdigest(),))
    monkeypatch.setattr(fetch_module, "PLUGINS", tuple(known if p is ltr else p for p in PLUGINS))
    artifacts = fetch_artifacts(tmp_path / "cache", folder, run=FakeMaven(), say=quiet)
    assert artifacts.plugins["opensearch-ltr"] == folder / LTR_ZIP


def test_the_shared_build_is_a_known_one():
    # The digest pinned in the bill of materials is the one its PROVENANCE.md gives.
    sidecar = Path(__file__).resolve().parents[4].parent / "shared/plugins" / f"{LTR_ZIP}.sha256"
    if not sidecar.is_file():
        pytest.skip(f"no {sidecar}")
    ltr = next(p for p in PLUGINS if p.name == "opensearch-ltr")
    assert sidecar.read_text().split()[0] in ltr.known_sha256


def test_required_failure_reports_maven_errors_and_retries_next_time(tmp_path):
    with pytest.raises(ProvisionError, match=r"could not fetch[\s\S]*Could not resolve"):
        fetch_artifacts(tmp_path, run=FakeMaven(fail=True), say=quiet)
    maven = FakeMaven()
    fetch_artifacts(tmp_path, run=maven, say=quiet)
    assert len(maven.calls) == 1


def test_a_file_gone_from_the_cache_is_fetched_again(tmp_path):
    maven = FakeMaven()
    artifacts = fetch_artifacts(tmp_path, run=maven, say=quiet)
    artifacts.modules["lang-mustache"][0].unlink()
    again = fetch_artifacts(tmp_path, run=maven, say=quiet)
    assert len(maven.calls) == 2
    assert again.modules["lang-mustache"][0].is_file()


def test_maven_that_leaves_a_file_out_is_reported(tmp_path):
    def forgetful(args, cwd):
        done = FakeMaven()(args, cwd)
        (cache_root(tmp_path) / "distribution" / DISTRIBUTION.filename).unlink()
        return done

    with pytest.raises(ProvisionError, match=r"Maven finished, but .* is missing"):
        fetch_artifacts(tmp_path, run=forgetful, say=quiet)


def test_pom_copies_each_maven_artifact_to_its_own_folder(tmp_path):
    pom = ET.fromstring(fetch_module._pom(tmp_path))
    items = pom.findall(".//m:artifactItem", NS)
    expected = 1 + sum(len(m.jars) for m in MODULES) + len(FROM_MAVEN)
    assert len(items) == expected
    folders = {
        i.findtext("m:artifactId", namespaces=NS): i.findtext("m:outputDirectory", namespaces=NS)
        for i in items
    }
    assert folders["compiler"] == str(tmp_path / "modules" / "lang-mustache")
    assert folders["opensearch-knn"] == str(tmp_path / "plugins")
    assert folders["neural-search"] == str(tmp_path / "plugins")
    assert "opensearch-ltr" not in folders


def test_missing_maven_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch_module.shutil, "which", lambda _: None)
    with pytest.raises(ProvisionError, match="Maven \\(mvn\\) is needed"):
        fetch_artifacts(tmp_path, say=quiet)


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
            target=lambda: results.append(fetch_artifacts(tmp_path, run=slow, say=quiet))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 3
    assert len(slow_calls) == 1
    assert results[0] == results[1] == results[2]


def test_the_secured_set_fetches_only_what_the_cache_lacks(tmp_path):
    """A cache filled for the test node gets the security plugin alone, in a POM of its own:
    the files another node may be starting from are not copied again."""
    from ltrr.plugin.ops.node.bom import SECURED_PLUGINS

    maven = FakeMaven()
    fetch_artifacts(tmp_path, run=maven, say=quiet)
    secured = fetch_artifacts(tmp_path, plugins=SECURED_PLUGINS, run=maven, say=quiet)
    assert len(maven.calls) == 2
    pom = ET.parse(maven.calls[1][maven.calls[1].index("-f") + 1])
    items = [
        i.findtext("m:artifactId", namespaces=NS) for i in pom.iterfind(".//m:artifactItem", NS)
    ]
    assert items == ["opensearch-security"]
    assert list(secured.plugins) == ["opensearch-security"]
    assert secured.missing == {}
    again = fetch_artifacts(tmp_path, plugins=SECURED_PLUGINS, run=maven, say=quiet)
    assert len(maven.calls) == 2
    assert again == secured
