"""Gather the bill of materials into a cache that later runs reuse.

Maven itself downloads what Maven Central serves (checksums, mirrors and proxies from the
user's ``settings.xml`` all apply); its local repository lives inside our cache folder, so
deleting that one folder is a true cold start, and a second ``up`` never touches the network.
Plugins that Maven Central does not serve are taken from the plugin folder the user names, and
checked against the ``.sha256`` file beside them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.ops.node.bom import (
    DISTRIBUTION,
    MODULES,
    OPENSEARCH_VERSION,
    PLUGINS,
    Artifact,
    Plugin,
)
from ltrr.plugin.ops.node.lock import exclusive

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

Runner = Callable[[list[str], Path], subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Artifacts:
    """Where each file sits, and, for a plugin that is not there, one line saying why."""

    root: Path
    distribution: Path
    modules: dict[str, list[Path]]
    plugins: dict[str, Path]
    missing: dict[str, str] = field(default_factory=dict)


def cache_root(cache_dir: Path) -> Path:
    return cache_dir / f"opensearch-{OPENSEARCH_VERSION}"


def _wanted(root: Path, plugins: Sequence[Plugin]) -> list[tuple[Artifact, Path]]:
    """Every Maven artifact a node with ``plugins`` needs, with the folder it is kept in."""
    items = [(DISTRIBUTION, root / "distribution")]
    items += [(jar, root / "modules" / m.name) for m in MODULES for jar in m.jars]
    items += [(p.zip, root / "plugins") for p in plugins if p.from_maven]
    return items


def _expected(root: Path, plugins: Sequence[Plugin] = PLUGINS) -> list[Path]:
    return [folder / artifact.filename for artifact, folder in _wanted(root, plugins)]


def fetch_artifacts(
    cache_dir: Path,
    plugin_dir: Path | None = None,
    *,
    plugins: Sequence[Plugin] | None = None,
    run: Runner | None = None,
    say: Callable[[str], None] = print,
) -> Artifacts:
    """The cached artifacts of a node with ``plugins`` (default: the test node's), downloading
    first whatever the cache lacks (all of it on the first run; a plugin added later, alone)."""
    wanted = tuple(PLUGINS if plugins is None else plugins)
    root = cache_root(cache_dir)
    with exclusive(root.with_name(root.name + ".lock")):
        if not all(path.is_file() for path in _expected(root, wanted)):
            _download(root, run or _run_maven, say, wanted)
    missing: dict[str, str] = {}
    found_plugins: dict[str, Path] = {}
    for plugin in wanted:
        if plugin.from_maven:
            found_plugins[plugin.name] = root / "plugins" / plugin.zip.filename
            continue
        found = _from_folder(plugin.zip.filename, plugin_dir, plugin.known_sha256)
        if isinstance(found, Path):
            found_plugins[plugin.name] = found
        else:
            missing[plugin.name] = found
    modules = {
        module.name: [root / "modules" / module.name / jar.filename for jar in module.jars]
        for module in MODULES
    }
    distribution = root / "distribution" / DISTRIBUTION.filename
    return Artifacts(root, distribution, modules, found_plugins, missing)


def _from_folder(filename: str, folder: Path | None, known: tuple[str, ...]) -> Path | str:
    """The verified zip, or the one line that says why it is not installed.

    A zip is installed only when its sha256 is a known good build's or matches the
    ``.sha256`` file beside it; anything else is refused, loudly.
    """
    hint = "set LTRR_PLUGIN_DIR (or --plugin-dir) to the folder that holds it"
    if folder is None:
        return f"no plugin folder given, so {filename} was not looked for; {hint}"
    path = folder / filename
    if not path.is_file():
        return f"{filename} is not in {folder}; {hint}"
    actual = sha256_of(path)
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        words = sidecar.read_text().split()
        expected = words[0].lower() if words else ""
        if actual != expected:
            raise ProvisionError(
                f"{path} has sha256 {actual}, but {sidecar.name} says {expected or '(empty)'}:"
                " the file is damaged or not the one published; refusing to install it"
            )
    elif actual not in known:
        raise ProvisionError(
            f"{path} has sha256 {actual}, which is no known build, and there is no"
            f" {sidecar.name} beside it: check the digest against its publisher's and write it"
            f" there (sha256sum {filename} > {sidecar.name}); refusing to install it unverified"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(
    root: Path, run: Runner, say: Callable[[str], None], plugins: Sequence[Plugin]
) -> None:
    """Copy from Maven Central only what the cache lacks: the files already there may be in
    use by another node's start (and need no second download)."""
    root.mkdir(parents=True, exist_ok=True)
    say(f"Fetching OpenSearch {OPENSEARCH_VERSION} from Maven Central into {root}")
    # The POM sits in a folder of its own, away from the artifacts it copies.
    pom = root / "pom" / "pom.xml"
    pom.parent.mkdir(exist_ok=True)
    lacking = [(a, f) for a, f in _wanted(root, plugins) if not (f / a.filename).is_file()]
    pom.write_text(_pom(root, lacking))
    done = run(["-f", str(pom), "dependency:copy"], root)
    if done.returncode != 0:
        raise ProvisionError(
            "Maven could not fetch the OpenSearch artifacts:\n" + _maven_errors(done)
        )
    absent = [str(p) for p in _expected(root, plugins) if not p.is_file()]
    if absent:
        raise ProvisionError(f"Maven finished, but {absent[0]} is missing; delete {root} and retry")


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


def _pom(root: Path, wanted: Sequence[tuple[Artifact, Path]] | None = None) -> str:
    """A throwaway POM whose only job is to copy each Maven artifact to its folder (by
    default, all that the test node needs)."""
    items = [
        _item(a, folder) for a, folder in (_wanted(root, PLUGINS) if wanted is None else wanted)
    ]
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
