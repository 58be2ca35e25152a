"""The published UBI 1.3.0 query schemas, as JSON Schema, for the tests to validate against.

Written from the specification's own schemas (draft 2020-12), keeping every constraint and
leaving out the prose and examples:

- https://github.com/o19s/ubi/blob/main/schema/1.3.0/query.request.schema.json
  (a query record: what ``ubi_queries`` holds)
- https://github.com/o19s/ubi/blob/main/schema/1.3.0/query.response.schema.json
  (what the search answer carries in ``ext.ubi``)

``query_id`` is ``oneOf`` a UUID or a string of at most 100 characters, as published. With
formats checked, a hyphenated UUID matches both branches, so ``oneOf`` refuses it; the proxy's
ids are 32 hex digits (a string, not the ``uuid`` format), which match exactly one branch.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

_QUERY_ID = {
    "oneOf": [
        {"type": "string", "format": "uuid"},
        {"type": "string", "maxLength": 100},
    ]
}

QUERY_REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://o19s.github.io/ubi/schema/1.3.0/query.request.schema.json",
    "type": "object",
    "required": ["user_query"],
    "properties": {
        "application": {"type": "string", "maxLength": 100},
        "query_id": _QUERY_ID,
        "client_id": {"type": "string", "maxLength": 100},
        "user_query": {"type": "string"},
        "query_attributes": {"type": "object", "additionalProperties": True},
        "object_id_field": {"type": "string", "maxLength": 100},
        "timestamp": {"type": "string", "format": "date-time"},
        "query_response_id": {"type": "string"},
        "query_response_hit_ids": {"type": "array", "items": {"type": "string"}},
    },
}

QUERY_RESPONSE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://o19s.github.io/ubi/schema/1.3.0/query.response.schema.json",
    "type": "object",
    "required": ["query_id"],
    "properties": {"query_id": _QUERY_ID},
}

_CHECKER = Draft202012Validator.FORMAT_CHECKER
QUERY_REQUEST = Draft202012Validator(QUERY_REQUEST_SCHEMA, format_checker=_CHECKER)
QUERY_RESPONSE = Draft202012Validator(QUERY_RESPONSE_SCHEMA, format_checker=_CHECKER)


def errors(validator: Draft202012Validator, instance: object) -> list[str]:
    """Every violation, readable in an assertion message; [] when valid."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
