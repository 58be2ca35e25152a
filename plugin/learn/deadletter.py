"""Dead letters: acknowledged events that OpenSearch refused for good, kept instead of lost.

Intake checks events against what ``ltrr-events`` accepts, so this should stay empty. When a
record is refused anyway (a mapping someone changed, say), retrying would block every later
event, and dropping it would lose an acknowledged event: it is appended here, fsync'd, and
counted in ``/_ltrr/stats``, for an operator to inspect and replay.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

FILE_NAME = "dead-letter.jsonl"


class DeadLetters:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILE_NAME
        self.count = _lines(self.path)

    def add(self, index: str, record: Mapping[str, Any], reason: Mapping[str, Any]) -> None:
        """One line per refused record: where it was going, OpenSearch's reason, the record."""
        line = orjson.dumps({"index": index, "reason": reason, "record": record})
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.count += 1


def _lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())
