"""The node is real and complete: every query shape the product's arms rely on runs on it."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

DIM = 384

# id: (name, tags, popularity, tag weights, basis axis of the document's vector)
ARTISTS = {
    "radiohead": ("Radiohead", "alternative rock", 90.0, {"alternative": 8.0, "rock": 5.0}, 0),
    "portishead": ("Portishead", "trip-hop", 40.0, {"trip-hop": 9.0}, 1),
    "massive-attack": ("Massive Attack", "trip-hop electronic", 60.0, {"trip-hop": 6.0}, 2),
    "rock-steady-crew": ("Rock Steady Crew", "hip hop", 5.0, {"hip-hop": 7.0}, 3),
    "rolling-stones": ("The Rolling Stones", "classic rock", 99.0, {"rock": 9.0}, 4),
    "radio-birdman": ("Radio Birdman", "punk rock", 10.0, {"punk": 6.0, "rock": 2.0}, 5),
}


def vector(axis: int, tilt: float = 0.0) -> list[float]:
    """A unit vector on ``axis``, tilted towards the next axis (cosine = 1/sqrt(1+tilt^2))."""
    values = [0.0] * DIM
    values[axis] = 1.0
    values[(axis + 1) % DIM] = tilt
    norm = math.sqrt(1.0 + tilt * tilt)
    return [v / norm for v in values]


MAPPING = {
    "settings": {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}},
    "mappings": {
        "properties": {
            "name": {"type": "text", "analyzer": "english"},
            "tags": {"type": "text", "analyzer": "english"},
            "embedding": {
                "type": "knn_vector",
                "dimension": DIM,
                "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
            },
            "popularity": {"type": "rank_feature"},
            "tag_weights": {"type": "rank_features"},
        }
    },
}


@pytest.fixture
def artists(client: OpenSearch, index_name: str) -> str:
    client.indices.create(index=index_name, body=MAPPING)
    lines: list[str] = []
    for doc_id, (name, tags, popularity, weights, axis) in ARTISTS.items():
        lines.append(json.dumps({"index": {"_index": index_name, "_id": doc_id}}))
        doc = {
            "name": name,
            "tags": tags,
            "popularity": popularity,
            "tag_weights": weights,
            "embedding": vector(axis),
        }
        lines.append(json.dumps(doc))
    result = client.bulk(body="\n".join(lines) + "\n", refresh=True)
    assert not result["errors"], result
    return index_name


def ids(response: dict[str, object]) -> list[str]:
    hits = response["hits"]["hits"]  # type: ignore[index]
    return [hit["_id"] for hit in hits]


def test_mapping_uses_lucene_knn_and_rank_features(client: OpenSearch, artists: str) -> None:
    props = client.indices.get_mapping(index=artists)[artists]["mappings"]["properties"]
    assert props["embedding"]["type"] == "knn_vector"
    assert props["embedding"]["dimension"] == DIM
    assert props["embedding"]["method"]["engine"] == "lucene"
    assert props["embedding"]["method"]["space_type"] == "cosinesimil"
    assert props["popularity"]["type"] == "rank_feature"
    assert props["tag_weights"]["type"] == "rank_features"


def test_one_msearch_runs_every_arm_with_its_own_size(client: OpenSearch, artists: str) -> None:
    searches = [
        # lexical arm: four documents mention rock; the name boost decides the top one
        {"size": 2, "query": {"multi_match": {"query": "rock", "fields": ["name^3", "tags"]}}},
        # vector arm: the query leans towards Massive Attack, then Rock Steady Crew (next axis)
        {"size": 3, "query": {"knn": {"embedding": {"vector": vector(2, 0.3), "k": 3}}}},
        # popularity arm
        {"size": 1, "query": {"rank_feature": {"field": "popularity"}}},
        # a per-tag weight from a rank_features field
        {"size": 5, "query": {"rank_feature": {"field": "tag_weights.trip-hop"}}},
    ]
    body: list[dict[str, object]] = []
    for search in searches:
        body += [{"index": artists}, search]
    responses = client.msearch(body=body)["responses"]

    assert [r["status"] for r in responses] == [200, 200, 200, 200]
    lexical, dense, popular, trip_hop = responses

    assert lexical["hits"]["total"]["value"] == 4
    assert ids(lexical)[0] == "rock-steady-crew"
    assert len(ids(lexical)) == 2
    assert set(ids(lexical)) <= {"radiohead", "rock-steady-crew", "rolling-stones", "radio-birdman"}

    assert ids(dense)[:2] == ["massive-attack", "rock-steady-crew"]
    assert len(ids(dense)) == 3
    top = dense["hits"]["hits"][0]["_score"]
    # lucene cosinesimil scores (1 + cos) / 2
    assert top == pytest.approx((1 + 1 / math.sqrt(1.09)) / 2, rel=1e-4)

    assert ids(popular) == ["rolling-stones"]
    assert ids(trip_hop) == ["portishead", "massive-attack"]


@pytest.fixture
def stored_template(client: OpenSearch) -> Iterator[str]:
    template_id = f"ltrr-it-{uuid.uuid4().hex[:12]}"
    client.put_script(
        id=template_id,
        body={
            "script": {
                "lang": "mustache",
                "source": {
                    "size": "{{size}}",
                    "query": {"multi_match": {"query": "{{q}}", "fields": ["name^3", "tags"]}},
                },
            }
        },
    )
    yield template_id
    client.delete_script(id=template_id)


def test_stored_mustache_template_through_msearch_template(
    client: OpenSearch, artists: str, stored_template: str
) -> None:
    body = [
        {"index": artists},
        {"id": stored_template, "params": {"q": "trip", "size": 5}},
        {"index": artists},
        {"id": stored_template, "params": {"q": "stones", "size": 1}},
    ]
    responses = client.msearch_template(body=body)["responses"]
    assert [r["status"] for r in responses] == [200, 200]
    assert set(ids(responses[0])) == {"portishead", "massive-attack"}
    assert ids(responses[1]) == ["rolling-stones"]

    rendered = client.render_search_template(
        body={"id": stored_template, "params": {"q": "punk", "size": 3}}
    )["template_output"]
    assert rendered["query"]["multi_match"]["query"] == "punk"
