"""Trained rankers as LTR plugin model definitions, and scorers that read those definitions back.

The scorers exist so that a test can prove the JSON we upload ranks like the model we
evaluated: a tree dump that lost a split, or weights with their scaling misapplied, would
otherwise surface only as a worse search in production.

- ``model/xgboost+json``: the booster's JSON tree dump (``get_dump(dump_format="json")``) as
  one JSON array. Splits name features by the featureset's names (the trainer gives xgboost
  those names), go to ``yes`` when value < split_condition (compared in float32, as xgboost
  does), and to ``missing`` when the value is absent. The trainer fixes ``base_score`` at 0,
  so the leaves' sum is the whole margin.
- ``model/linear``: ``{"feature": weight, ...}`` in raw feature space. The plugin's linear
  model has no intercept; we drop it, which is safe because an intercept adds the same amount
  to every document of a query and so never changes the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from ltrr.query_plans.ltr.featureset import FeatureSet
from ltrr.query_plans.ltr.train import TrainedModel

__all__ = [
    "LINEAR",
    "XGBOOST",
    "createmodel_body",
    "createmodel_path",
    "definition_features",
    "linear_definition",
    "model_definition",
    "score_linear",
    "score_xgboost",
    "xgboost_definition",
]

XGBOOST = "model/xgboost+json"
LINEAR = "model/linear"


def xgboost_definition(model: TrainedModel) -> str:
    if model.kind != "lambdamart" or model.booster is None:
        raise ValueError("an xgboost definition needs a trained LambdaMART model")
    trees = model.booster.get_dump(dump_format="json")
    return "[" + ",".join(tree.strip() for tree in trees) + "]"


def linear_definition(model: TrainedModel) -> str:
    if model.kind != "linear":
        raise ValueError("a linear definition needs a trained linear model")
    weights = dict(zip(model.feature_names, model.weights, strict=True))
    return orjson.dumps(weights).decode()


def model_definition(model: TrainedModel) -> tuple[str, str]:
    """(plugin model type, definition text) for either kind."""
    if model.kind == "lambdamart":
        return XGBOOST, xgboost_definition(model)
    return LINEAR, linear_definition(model)


def _tree_features(node: Mapping[str, Any], out: set[str]) -> None:
    if "split" in node:
        out.add(str(node["split"]))
    for child in node.get("children", ()):
        _tree_features(child, out)


def definition_features(model_type: str, definition: str) -> set[str]:
    """The feature names a definition refers to."""
    if model_type not in (LINEAR, XGBOOST):
        raise ValueError(f"unknown model type {model_type!r}; expected {XGBOOST} or {LINEAR}")
    parsed = orjson.loads(definition)
    if model_type == LINEAR:
        return set(parsed)
    out: set[str] = set()
    for tree in parsed:
        _tree_features(tree, out)
    return out


def createmodel_path(featureset: str, store: str | None = None) -> str:
    """Where ``_createmodel`` lives: under the featureset, in the default or a named store."""
    prefix = f"/_ltr/{store}" if store else "/_ltr"
    return f"{prefix}/_featureset/{featureset}/_createmodel"


def createmodel_body(
    name: str, model_type: str, definition: str, featureset: FeatureSet
) -> dict[str, Any]:
    """The ``_createmodel`` body; refuses a definition naming a feature the set lacks, which
    the plugin would reject only after the upload (or, for linear, silently score as 0)."""
    unknown = definition_features(model_type, definition) - set(featureset.names)
    if unknown:
        raise ValueError(
            f"model {name}: features {sorted(unknown)} are not in featureset {featureset.name}"
        )
    return {"model": {"name": name, "model": {"type": model_type, "definition": definition}}}


def _leaf(node: Mapping[str, Any], features: Mapping[str, float]) -> float:
    while "leaf" not in node:
        value = features.get(str(node["split"]))
        if value is None or value != value:
            target = node["missing"]
        elif np.float32(value) < np.float32(node["split_condition"]):
            target = node["yes"]
        else:
            target = node["no"]
        node = next(c for c in node["children"] if c["nodeid"] == target)
    return float(node["leaf"])


def score_xgboost(definition: str, features: Mapping[str, float]) -> float:
    """The sum of every tree's leaf for one document's feature values."""
    return sum(_leaf(tree, features) for tree in orjson.loads(definition))


def score_linear(definition: str, features: Mapping[str, float]) -> float:
    """sum(weight x value); a feature the document lacks counts as 0, as in the plugin."""
    weights: dict[str, float] = orjson.loads(definition)
    return sum(w * features.get(name, 0.0) for name, w in weights.items())
