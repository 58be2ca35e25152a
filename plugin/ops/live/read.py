"""Reading a period of ``ltrr-decisions`` and ``ltrr-events`` back from a cluster.

The patterns match one index or the daily indices behind an alias alike, and the scroll reads
the whole period (a search alone stops at 10,000 hits). The filters are on the two date
fields the mappings index; everything else is read from ``_source``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opensearchpy import helpers
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from ltrr.plugin.errors import ClusterUnavailable, LtrrError
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX
from ltrr.plugin.ops.client import Cluster, ClusterError

__all__ = ["DECISIONS", "EVENTS", "Period", "parse_since", "parse_until", "read_period"]

# The logs' aliases and everything under them (their daily indices, an index from before).
DECISIONS = f"{DECISIONS_INDEX}*"
EVENTS = f"{EVENTS_INDEX}*"
# The ranked list and each arm's ids are most of a decision's bytes and no figure needs them.
SKIPPED_FIELDS = ("returned", "arms.*.results", "nonce")
PAGE = 1000

_SINCE = re.compile(r"\s*(\d+)\s*([mhdw])\s*")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d`` or ``2w`` as a duration."""
    match = _SINCE.fullmatch(text)
    if match is None:
        raise LtrrError(
            f"--since {text!r}: expected a whole number and a unit (m, h, d or w), "
            "such as 90m, 24h or 7d"
        )
    amount = int(match.group(1))
    if amount == 0:
        raise LtrrError(f"--since {text!r}: the period must be longer than zero")
    return timedelta(**{_UNITS[match.group(2)]: amount})


def parse_until(text: str) -> float:
    """An end of period as epoch seconds, from epoch seconds or ISO 8601 (UTC unless it says)."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
        raise LtrrError(f"--until {text!r}: expected a finite number of epoch seconds")
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise LtrrError(
            f"--until {text!r}: expected epoch seconds or an ISO 8601 time such as "
            "2026-01-05T12:00:00Z"
        ) from None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Period:
    """The documents of one period, as stored (less ``SKIPPED_FIELDS``)."""

    start: float  # epoch seconds
    end: float
    targets: tuple[str, ...]  # empty: every target
    decisions: Sequence[Mapping[str, Any]]
    events: Sequence[Mapping[str, Any]]


def read_period(
    cluster: Cluster,
    since: timedelta,
    *,
    targets: Sequence[str] = (),
    now: float | None = None,
    decisions: str = DECISIONS,
    events: str = EVENTS,
) -> Period:
    """Every decision made and every event received from ``now - since`` to ``now``.

    Events are filtered on when the proxy received them (their own ``timestamp`` is the
    client's clock), so that one arriving late for a decision of the period is still read.
    """
    end = time.time() if now is None else now
    start = end - since.total_seconds()
    return Period(
        start,
        end,
        tuple(targets),
        list(_scan(cluster, decisions, _query("timestamp", start, end, targets))),
        list(_scan(cluster, events, _query("received", start, end, targets))),
    )


def _query(field: str, start: float, end: float, targets: Sequence[str]) -> dict[str, Any]:
    # Whole seconds widened outwards: the bounds are parsed as epoch_second, the period kept.
    span = {"gte": int(start), "lte": int(end) + 1, "format": "epoch_second"}
    filters: list[dict[str, Any]] = [{"range": {field: span}}]
    if targets:
        filters.append({"terms": {"target": list(targets)}})
    return {"query": {"bool": {"filter": filters}}, "_source": {"excludes": list(SKIPPED_FIELDS)}}


def _scan(cluster: Cluster, index: str, body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Each hit's ``_source``; a pattern that matches no index reads as empty."""
    try:
        for hit in helpers.scan(
            cluster.client,
            index=index,
            query=dict(body),
            size=PAGE,
            scroll="2m",
            request_timeout=cluster.timeout,
            ignore_unavailable=True,
            allow_no_indices=True,
        ):
            yield hit["_source"]
    except (ClientConnectionError, ConnectionTimeout) as exc:
        raise ClusterUnavailable(
            f"{cluster.url} did not answer a search of {index}: {exc}"
        ) from exc
    except helpers.ScanError as exc:  # some shards failed: a partial period would mislead
        raise LtrrError(f"reading {index} on {cluster.url} stopped: {exc}") from exc
    except TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        raise ClusterError("GET", f"/{index}/_search", status, exc.info) from exc
