"""The ``sltr`` params of one search: what every feature of a catalog's featureset reads.

Feature logging for training and the proxy's rerank both build them here, so a model sees at
serve time exactly the inputs it was trained on. Every value is a string: the plugin renders
its features with mustache, and a JSON array (the query vector, an arm's ids) or an escaped
memory key must reach the template as text, inserted unescaped (``{{{name}}}``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import orjson

from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.memory import keys

__all__ = [
    "KEYWORDS",
    "MEMORY_EXACT",
    "MEMORY_NEAR",
    "NO_KEY",
    "QUERY_VECTOR",
    "provenance_param",
    "search_params",
]

KEYWORDS = "keywords"
QUERY_VECTOR = "query_vector"
MEMORY_EXACT = "memory_exact"
MEMORY_NEAR = "memory_near"
# A query of no words has no memory key; this one names no stored feature (near keys are "~"
# followed by words), so the memory features log 0 instead of failing on a field "ltrr_q2e.".
NO_KEY = "~"


def provenance_param(arm: str) -> str:
    """The param holding the ids ``arm`` retrieved in this search (a JSON array)."""
    return f"from_{arm}"


def _key(key: str) -> str:
    """A memory key as the inside of a JSON string (it goes between quotes in the template)."""
    return orjson.dumps(key or NO_KEY).decode()[1:-1]


def search_params(
    catalog: Catalog,
    query: str,
    *,
    vector: Sequence[float] | None,
    retrieved: Mapping[str, Iterable[str]],
) -> dict[str, str]:
    """Every param the catalog's featureset can read, for one search.

    ``retrieved`` maps each arm that answered to the ids it found; an arm not asked found
    nothing (``[]``), which is what its provenance feature must say. Without a vector the
    param is absent (as with a vector that is not finite), and a featureset with a dense
    feature then fails in the plugin with a "missing param" error rather than scoring every
    document against a made-up vector. The catalog's own ``rerank.params`` never override
    these: training logs exactly these values.
    """
    exact, near = keys(query)
    params = {KEYWORDS: query, MEMORY_EXACT: _key(exact), MEMORY_NEAR: _key(near)}
    values = [float(v) for v in vector] if vector is not None else []
    if values and all(math.isfinite(v) for v in values):  # NaN would be JSON null
        params[QUERY_VECTOR] = orjson.dumps(values).decode()
    for arm in catalog.arms:
        ids = sorted(set(retrieved.get(arm.name, ())))
        params[provenance_param(arm.name)] = orjson.dumps(ids).decode()
    return params
