"""Download the bill of materials from Maven Central once, into a cache that later runs reuse.

Maven itself does the downloading (checksums, mirrors and proxies from the user's
``settings.xml`` all apply). Its local repository lives inside our cache folder, so deleting
that one folder is a true cold start, and a second ``up`` never touches the network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.node.bom import DISTRIBUTION, MODULES, OPENSEARCH_VERSION, PLUGINS, Artifact
from ltrr.plugin.node.lock import exclusive

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
_MANIFEST = "manifest.json"

Runner = Callable[[list[str], Path], subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Artifacts:
    """Where each fetched file sits in the cache, and why an optional plugin is absent."""

    root: Path
    distribution: Path
    modules: dict[str, list[Path]]
    plugins: dict[str, Path]
    missing: dict[str, str] = field(default_factory=dict)


def cache_root(cache_dir: Path) -> Path:
    return cache_dir / f"opensearch-{OPENSEARCH_VERSION}"


def fetch_artifacts(
    cache_dir: Path, *, run: Runner | None = None, say: Callable[[str], None] = print
) -> Artifacts:
    """Return the cached artifacts, downloading them first if this cache has never been filled."""
    root = cache_root(cache_dir)
    with exclusive(root.with_name(root.name + ".lock")):
        if not (root / _MANIFEST).is_file():
            _download(root, run or _run_maven, say)
    return _load(root)


def _download(root: Path, run: Runner, say: Callable[[str], None]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    say(f"Fetching OpenSearch {OPENSEARCH_VERSION} from Maven Central into {root} (first run)")
    # The POM sits in a folder of its own: in ``root`` it would also steer the single-artifact
    # copies below, which must run as Maven's standalone project.
    pom = root / "pom" / "pom.xml"
    pom.parent.mkdir(exist_ok=True)
    pom.write_text(_pom(root))
    done = run(["-f", str(pom), "dependency:copy"], root)
    if done.returncode != 0:
        raise ProvisionError(
            "Maven could not fetch the OpenSearch artifacts:\n" + _maven_errors(done)
        )
    missing: dict[str, str] = {}
    for plugin in PLUGINS:
        if plugin.required:
            continue
        done = run(_copy_one(plugin.zip, root / "plugins"), root)
        if done.returncode != 0:
            missing[plugin.name] = _maven_errors(done)
    (root / _MANIFEST).write_text(json.dumps({"missing": missing}, indent=2) + "\n")


def _load(root: Path) -> Artifacts:
    """Read the cache as it is now; a plugin zip dropped in by hand counts as present."""
    missing: dict[str, str] = json.loads((root / _MANIFEST).read_text())["missing"]
    plugins: dict[str, Path] = {}
    for plugin in PLUGINS:
        path = root / "plugins" / plugin.zip.filename
        if path.is_file():
            plugins[plugin.name] = path
            missing.pop(plugin.name, None)
        elif plugin.required:
            raise ProvisionError(f"{path} is missing from the cache; delete {root} and run again")
    modules = {
        module.name: [root / "modules" / module.name / jar.filename for jar in module.jars]
        for module in MODULES
    }
    absent = [str(p) for paths in modules.values() for p in paths if not p.is_file()]
    if absent:
        raise ProvisionError(f"{absent[0]} is missing from the cache; delete {root} and run again")
    return Artifacts(root, root / "distribution" / DISTRIBUTION.filename, modules, plugins, missing)


def _item(artifact: Artifact, into: Path) -> str:
    return (
        "<artifactItem>"
        f"<groupId>{escape(artifact.group)}</groupId>"
        f"<artifactId>{escape(artifact.artifact)}</artifactId>"
        f"<version>{escape(artifact.version)}</version>"
        f"<type>{escape(artifact.packaging)}</type>"
        f"<outputDirectory>{escape(str(into))}</outputDirectory>"
        "</artifactItem>"
    )


def _pom(root: Path) -> str:
    """A throwaway POM whose only job is to copy each required artifact to its folder."""
    items = [_item(DISTRIBUTION, root / "distribution")]
    items += [_item(jar, root / "modules" / m.name) for m in MODULES for jar in m.jars]
    items += [_item(p.zip, root / "plugins") for p in PLUGINS if p.required]
    group, artifact, version = DEPENDENCY_PLUGIN.split(":")
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">'
        "<modelVersion>4.0.0</modelVersion>"
        "<groupId>ltrr.local</groupId><artifactId>opensearch-node</artifactId>"
        f"<version>{OPENSEARCH_VERSION}</version><packaging>pom</packaging>"
        "<build><plugins><plugin>"
        f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
        "<configuration><overWriteReleases>true</overWriteReleases><artifactItems>"
        + "\n".join(items)
        + "</artifactItems></configuration></plugin></plugins></build></project>\n"
    )


def _copy_one(artifact: Artifact, into: Path) -> list[str]:
    # -U: an optional artifact that was missing yesterday may be published today.
    return [
        "-U",
        f"{DEPENDENCY_PLUGIN}:copy",
        f"-Dartifact={artifact.coords}",
        f"-DoutputDirectory={into}",
    ]


def _run_maven(args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ProvisionError(
            "Maven (mvn) is needed once, to fetch OpenSearch from Maven Central: "
            "install it (e.g. apt-get install maven) and run again"
        )
    command = [mvn, "-B", "-ntp", f"-Dmaven.repo.local={root / 'm2'}", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)


def _maven_errors(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stdout.splitlines() if line.startswith("[ERROR]")]
    lines = [line for line in lines if line.strip() != "[ERROR]"]
    return "\n".join(lines[:3]) or (done.stderr.strip() or done.stdout.strip())[-2000:]
