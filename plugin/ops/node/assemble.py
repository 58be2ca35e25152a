"""Turn the cached artifacts into a runnable OpenSearch home, and write its configuration.

The home is disposable: data and logs live beside it, so it can be rebuilt whenever the set of
artifacts changes (say, an LTR plugin zip appears in the cache) without losing any index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.ops.node.bom import MODULES, OPENSEARCH_VERSION, PLUGINS, SECURED_PLUGINS
from ltrr.plugin.ops.node.fetch import Artifacts, sha256_of

_MARKER = ".ltrr-assembled.json"


def assemble(artifacts: Artifacts, home: Path, java_home: Path) -> bool:
    """Build ``home`` unless it already matches these artifacts; True if it was (re)built."""
    fingerprint = {
        "opensearch": OPENSEARCH_VERSION,
        "modules": sorted(artifacts.modules),
        "plugins": {name: sha256_of(path) for name, path in sorted(artifacts.plugins.items())},
    }
    marker = home / _MARKER
    if marker.is_file() and json.loads(marker.read_text()) == fingerprint:
        return False
    if home.exists():
        shutil.rmtree(home)
    staging = home.with_name(home.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    _unzip_distribution(artifacts.distribution, staging)
    for module in MODULES:
        folder = staging / "modules" / module.name
        folder.mkdir(parents=True)
        for jar in artifacts.modules[module.name]:
            shutil.copy2(jar, folder / jar.name)
        (folder / "plugin-descriptor.properties").write_text(module.descriptor())
        policy = module.policy()
        if policy is not None:
            (folder / "plugin-security.policy").write_text(policy)
    # In the bill of materials' order: a plugin's parents are installed before it.
    order = {plugin.name: i for i, plugin in enumerate((*PLUGINS, *SECURED_PLUGINS))}
    for name, zip_path in sorted(
        artifacts.plugins.items(), key=lambda p: order.get(p[0], len(order))
    ):
        _install_plugin(staging, name, zip_path, java_home)
    (staging / _MARKER).write_text(json.dumps(fingerprint, indent=2) + "\n")
    staging.rename(home)
    return True


def configure(
    home: Path,
    *,
    port: int,
    transport_port: int,
    data: Path,
    logs: Path,
    heap: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a single-node, loopback-only configuration; rewritten on every start. ``extra``
    settings are added (the security plugin's, on a secured node)."""
    settings = {
        "cluster.name": "ltrr-local",
        "node.name": "ltrr-local-1",
        "network.host": "127.0.0.1",
        "http.port": port,
        "transport.port": transport_port,
        "discovery.type": "single-node",
        "path.data": str(data),
        "path.logs": str(logs),
        "action.auto_create_index": True,
        **(extra or {}),
    }
    text = "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())
    (home / "config" / "opensearch.yml").write_text(text)
    options = home / "config" / "jvm.options.d"
    options.mkdir(exist_ok=True)
    (options / "ltrr-heap.options").write_text(f"-Xms{heap}\n-Xmx{heap}\n")


def _unzip_distribution(zip_path: Path, into: Path) -> None:
    """Extract the zip's single top folder as ``into``, keeping the executable bits."""
    into.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if len(parts) < 2 or ".." in parts:
                continue
            target = into.joinpath(*parts[1:])
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)
    if not (into / "bin" / "opensearch").is_file():
        raise ProvisionError(f"{zip_path} does not look like an OpenSearch distribution")


def _install_plugin(home: Path, name: str, zip_path: Path, java_home: Path) -> None:
    """Install through the real installer, so its version and jar-hell checks still apply."""
    env = {**os.environ, "JAVA_HOME": str(java_home), "OPENSEARCH_JAVA_HOME": str(java_home)}
    done = subprocess.run(
        [str(home / "bin" / "opensearch-plugin"), "install", "--batch", zip_path.as_uri()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ProvisionError(
            f"installing {name} from {zip_path} failed:\n{(done.stdout + done.stderr).strip()}"
        )
