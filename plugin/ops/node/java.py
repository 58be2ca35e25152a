"""Find a Java runtime that this OpenSearch version accepts.

The integ-test zip carries no JDK, and machines often have several: 2.19 needs the
SecurityManager, which Java 24 removed, so "whatever java is on PATH" is not good enough.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ltrr.plugin.errors import JavaNotFound
from ltrr.plugin.ops.node.bom import JAVA_MAX, JAVA_MIN, OPENSEARCH_VERSION

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def parse_major(version_output: str) -> int | None:
    """Major version from ``java -version`` output (``1.8.0`` is 8, ``17.0.15`` is 17)."""
    found = _VERSION.search(version_output)
    if found is None:
        return None
    major = int(found.group(1))
    if major == 1 and found.group(2):
        return int(found.group(2))
    return major


def candidates() -> Iterable[Path]:
    """Java homes to try, the user's explicit choice first."""
    for var in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            yield Path(os.environ[var])
    on_path = shutil.which("java")
    if on_path:
        yield Path(on_path).resolve().parent.parent
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        yield from sorted(p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink())


def find_java_home() -> Path:
    seen: list[str] = []
    for home in candidates():
        java = home / "bin" / "java"
        if not java.is_file():
            continue
        done = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, check=False, timeout=60
        )
        major = parse_major(done.stderr + done.stdout)
        seen.append(f"{home} (Java {major})")
        if major is not None and JAVA_MIN <= major <= JAVA_MAX:
            return home
    found = "; ".join(seen) or "none"
    raise JavaNotFound(
        f"OpenSearch {OPENSEARCH_VERSION} needs Java {JAVA_MIN} to {JAVA_MAX}; found: {found}. "
        "Install one (e.g. apt-get install openjdk-17-jre-headless) or set OPENSEARCH_JAVA_HOME."
    )
