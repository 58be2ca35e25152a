"""The one mapping to OpenSearch's error JSON, and the serving errors' statuses."""

from __future__ import annotations

import pytest

from ltrr.bandit.errors import LtrrError
from ltrr.plugin.errors import (
    BadRequest,
    HttpError,
    InvalidEvent,
    PayloadTooLarge,
    UnknownDecision,
)


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (BadRequest("bad"), 400, "parse_exception"),
        (PayloadTooLarge("big"), 413, "content_too_long_exception"),
        (UnknownDecision("who"), 400, "illegal_argument_exception"),
        (InvalidEvent("what"), 400, "illegal_argument_exception"),
        (HttpError("down", status=502, error_type="proxy_exception"), 502, "proxy_exception"),
    ],
)
def test_each_error_maps_to_opensearch_error_json(error, status, kind):
    assert isinstance(error, LtrrError)
    assert error.status == status
    cause = {"type": kind, "reason": error.reason}
    assert error.body() == {"error": {"root_cause": [cause], **cause}, "status": status}


def test_a_status_given_to_one_error_leaves_its_class_alone():
    assert BadRequest("x", status=422).status == 422
    assert BadRequest("y").status == 400
