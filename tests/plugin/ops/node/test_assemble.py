import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.ops.node.assemble import assemble, configure
from ltrr.plugin.ops.node.bom import MODULES
from ltrr.plugin.ops.node.fetch import Artifacts

# Stands in for bin/opensearch-plugin: records its arguments and installs a folder.
PLUGIN_CLI = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/../install.log"
[ "$JAVA_HOME" = "/opt/fake-java" ] || exit 9
mkdir -p "$(dirname "$0")/../plugins/$(basename "$3" .zip)"
"""


def distribution(path, plugin_cli=PLUGIN_CLI):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text, mode in (
            ("opensearch-2.19.1/bin/opensearch", "#!/bin/sh\n", 0o755),
            ("opensearch-2.19.1/bin/opensearch-plugin", plugin_cli, 0o755),
            ("opensearch-2.19.1/config/opensearch.yml", "# default\n", 0o644),
            ("opensearch-2.19.1/modules/transport-netty4/plugin-descriptor.properties", "", 0o644),
        ):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, text)
        archive.writestr("opensearch-2.19.1/../evil", "outside")
    return path


@pytest.fixture
def artifacts(tmp_path):
    root = tmp_path / "cache"
    modules = {}
    for module in MODULES:
        folder = root / "modules" / module.name
        folder.mkdir(parents=True)
        modules[module.name] = []
        for jar in module.jars:
            (folder / jar.filename).write_bytes(b"jar")
            modules[module.name].append(folder / jar.filename)
    (root / "plugins").mkdir()
    knn = root / "plugins" / "opensearch-knn-2.19.1.0.zip"
    knn.write_bytes(b"zip")
    dist = distribution(root / "opensearch-2.19.1.zip")
    return Artifacts(root, dist, modules, {"opensearch-knn": knn})


def test_builds_modules_plugins_and_keeps_exec_bits(artifacts, tmp_path):
    home = tmp_path / "node" / "home"
    assert assemble(artifacts, home, java_home=Path("/opt/fake-java")) is True

    assert os.access(home / "bin" / "opensearch", os.X_OK)
    assert not (tmp_path / "node" / "evil").exists()
    for module in MODULES:
        folder = home / "modules" / module.name
        assert sorted(p.name for p in folder.glob("*.jar")) == sorted(
            j.filename for j in module.jars
        )
        assert (folder / "plugin-descriptor.properties").read_text() == module.descriptor()
        assert (folder / "plugin-security.policy").exists() == (module.policy() is not None)
    assert (home / "modules" / "transport-netty4").is_dir()
    log = (home / "install.log").read_text()
    assert log.strip() == f"install --batch {artifacts.plugins['opensearch-knn'].as_uri()}"
    assert (home / "plugins" / "opensearch-knn-2.19.1.0").is_dir()
    assert not home.with_name("home.partial").exists()


def test_matching_home_is_left_alone_and_a_new_plugin_rebuilds_it(artifacts, tmp_path):
    home = tmp_path / "home"
    java = Path("/opt/fake-java")
    assemble(artifacts, home, java)
    (home / "data-that-does-not-belong").write_text("x")
    assert assemble(artifacts, home, java) is False
    assert (home / "data-that-does-not-belong").exists()

    ltr = artifacts.root / "plugins" / "opensearch-ltr-2.19.1.0.zip"
    ltr.write_bytes(b"zip")
    grown = Artifacts(
        artifacts.root,
        artifacts.distribution,
        artifacts.modules,
        {**artifacts.plugins, "opensearch-ltr": ltr},
    )
    assert assemble(grown, home, java) is True
    assert not (home / "data-that-does-not-belong").exists()
    assert (home / "plugins" / "opensearch-ltr-2.19.1.0").is_dir()

    ltr.write_bytes(b"another build of the zip")  # same path, other bytes: rebuilt
    assert assemble(grown, home, java) is True


def test_plugins_install_in_bill_of_materials_order(artifacts, tmp_path):
    plugins = {}
    for name in ("opensearch-ltr", "opensearch-neural-search", "opensearch-knn"):
        path = artifacts.root / "plugins" / f"{name}-2.19.1.0.zip"
        path.write_bytes(b"zip")
        plugins[name] = path
    full = Artifacts(artifacts.root, artifacts.distribution, artifacts.modules, plugins)
    home = tmp_path / "home"
    assemble(full, home, Path("/opt/fake-java"))
    order = [line.rsplit("/", 1)[1] for line in (home / "install.log").read_text().splitlines()]
    assert order == [
        "opensearch-knn-2.19.1.0.zip",
        "opensearch-neural-search-2.19.1.0.zip",
        "opensearch-ltr-2.19.1.0.zip",
    ]


def test_failed_plugin_install_names_the_plugin_and_leaves_no_home(artifacts, tmp_path):
    home = tmp_path / "home"
    with pytest.raises(ProvisionError, match="installing opensearch-knn"):
        assemble(artifacts, home, java_home=tmp_path / "wrong-java")
    assert not home.exists()


def test_a_zip_that_is_not_opensearch_is_refused(artifacts, tmp_path):
    bogus = tmp_path / "bogus.zip"
    with zipfile.ZipFile(bogus, "w") as archive:
        archive.writestr("top/readme.txt", "hello")
    wrong = Artifacts(artifacts.root, bogus, artifacts.modules, {})
    with pytest.raises(ProvisionError, match="does not look like an OpenSearch distribution"):
        assemble(wrong, tmp_path / "home", tmp_path)


def test_configure_writes_a_loopback_single_node(tmp_path):
    (tmp_path / "config").mkdir()
    configure(
        tmp_path,
        port=9333,
        transport_port=9433,
        data=tmp_path / "d",
        logs=tmp_path / "l",
        heap="768m",
    )
    settings = dict(
        (key, json.loads(value))
        for key, value in (
            line.split(": ", 1)
            for line in (tmp_path / "config" / "opensearch.yml").read_text().splitlines()
        )
    )
    assert settings["http.port"] == 9333
    assert settings["network.host"] == "127.0.0.1"
    assert settings["discovery.type"] == "single-node"
    assert settings["path.data"] == str(tmp_path / "d")
    assert settings["transport.port"] == 9433  # pinned: never floats into another node's
    heap = (tmp_path / "config" / "jvm.options.d" / "ltrr-heap.options").read_text()
    assert heap == "-Xms768m\n-Xmx768m\n"
