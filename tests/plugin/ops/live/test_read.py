from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.client import ClusterError
from ltrr.plugin.ops.live.read import parse_since, parse_until, read_period
from tests.plugin.ops._scripted import scripted_cluster


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        (" 36 h ", timedelta(hours=36)),
    ],
)
def test_parse_since(text, expected):
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["24", "h", "1.5h", "24x", "-1h", "24hours", ""])
def test_parse_since_refuses_what_it_cannot_read(text):
    with pytest.raises(LtrrError, match=r"expected a whole number and a unit \(m, h, d or w\)"):
        parse_since(text)


def test_parse_since_refuses_an_empty_period():
    with pytest.raises(LtrrError, match="longer than zero"):
        parse_since("0d")


def _reply(status, body):
    return SimpleNamespace(status_code=status, content=orjson.dumps(body))


class ScrollScript:
    """Two pages per index pattern through the scroll API, then an empty one."""

    def __init__(self, pages):
        self.pages = pages  # pattern -> list of pages (lists of sources)
        self.calls = []
        self.left = {}

    def request(self, method, url, data=None, headers=None, timeout=None):
        parts = urlsplit(url)
        body = orjson.loads(data) if data else None
        self.calls.append((method, parts.path, parse_qs(parts.query), body))
        if parts.path.endswith("/_search") and parts.path != "/_search":
            pattern = parts.path.split("/")[1]
            self.left[pattern] = list(self.pages[pattern])
            return self._page(pattern)
        if parts.path == "/_search/scroll" and method == "POST":
            return self._page(body["scroll_id"])
        if parts.path == "/_search/scroll" and method == "DELETE":
            return _reply(200, {"succeeded": True})
        return _reply(404, {"error": "unexpected"})

    def _page(self, pattern):
        page = self.left[pattern].pop(0) if self.left[pattern] else []
        hits = [{"_id": str(i), "_source": s} for i, s in enumerate(page)]
        return _reply(
            200,
            {
                "_scroll_id": pattern,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": 3, "relation": "eq"}, "hits": hits},
            },
        )


def test_read_period_scrolls_both_patterns_within_the_period():
    script = ScrollScript(
        {
            "ltrr-decisions*": [
                [{"decision_id": "a"}, {"decision_id": "b"}],
                [{"decision_id": "c"}],
            ],
            "ltrr-events*": [[{"event_id": "e"}]],
        }
    )
    period = read_period(
        scripted_cluster(script), timedelta(hours=1), targets=["music"], now=10_000.5
    )
    assert [d["decision_id"] for d in period.decisions] == ["a", "b", "c"]
    assert [e["event_id"] for e in period.events] == ["e"]
    assert (period.start, period.end, period.targets) == (6_400.5, 10_000.5, ("music",))
    searches = [c for c in script.calls if c[1].endswith("/_search") and c[1] != "/_search"]
    assert [c[1] for c in searches] == ["/ltrr-decisions*/_search", "/ltrr-events*/_search"]
    for (_, _, params, body), field in zip(searches, ("timestamp", "received"), strict=True):
        assert params["scroll"] == ["2m"]
        assert params["allow_no_indices"] == ["true"]
        filters = body["query"]["bool"]["filter"]
        # whole seconds, widened outwards
        assert filters[0] == {
            "range": {field: {"gte": 6400, "lte": 10001, "format": "epoch_second"}}
        }
        assert filters[1] == {"terms": {"target": ["music"]}}
        assert "returned" in body["_source"]["excludes"]
    # the decisions took a second page: one scroll call for it and one that came back empty
    scrolls = [c for c in script.calls if c[0] == "POST" and c[1] == "/_search/scroll"]
    assert len(scrolls) == 3


def test_no_target_means_every_target():
    script = ScrollScript({"ltrr-decisions*": [], "ltrr-events*": []})
    period = read_period(scripted_cluster(script), timedelta(minutes=5), now=1000.0)
    assert period.decisions == []
    assert period.events == []
    assert all(
        len(c[3]["query"]["bool"]["filter"]) == 1 for c in script.calls if c[3] and "query" in c[3]
    )


def test_a_refused_search_names_the_pattern():
    class Refusing:
        def request(self, method, url, **kwargs):
            return _reply(403, {"error": {"type": "security_exception", "reason": "no"}})

    with pytest.raises(ClusterError, match=r"/ltrr-decisions\*/_search answered 403"):
        read_period(scripted_cluster(Refusing()), timedelta(hours=1), now=1000.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1767614400", 1767614400.0),
        ("2026-01-05T12:00:00Z", 1767614400.0),  # `date -u -d 2026-01-05T12:00:00Z +%s`
        ("2026-01-05T12:00:00", 1767614400.0),  # no zone: UTC
        ("2026-01-05T13:00:00+01:00", 1767614400.0),
    ],
)
def test_parse_until(text: str, expected: float) -> None:
    assert parse_until(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "nan", "inf", ""])
def test_parse_until_refuses(text: str) -> None:
    with pytest.raises(LtrrError, match="--until"):
        parse_until(text)
