"""The serving and operations errors; their root, ``LtrrError``, and the whole tree are in
``ltrr.bandit.errors`` (the lowest layer, so that every layer can raise into it).

``HttpError.body`` is the one mapping to OpenSearch's error JSON.
"""

from __future__ import annotations

from ltrr.bandit.errors import LtrrError

__all__ = [
    "BadRequest",
    "ClusterUnavailable",
    "DeadlineExceeded",
    "EventLogError",
    "Forbidden",
    "HttpError",
    "JavaNotFound",
    "LtrrError",
    "NodeError",
    "NodeStartError",
    "PayloadTooLarge",
    "PluginNotInstalled",
    "PortInUse",
    "ProvisionError",
    "UnknownDecision",
]


class NodeError(LtrrError):
    """The local OpenSearch node could not be provisioned, started, queried or stopped."""


class ProvisionError(NodeError):
    """An artifact could not be fetched from Maven Central, or the node home not assembled."""


class JavaNotFound(NodeError):
    """No Java runtime that this OpenSearch version supports was found."""


class NodeStartError(NodeError):
    """The node process exited or never turned green; the message carries the log tail."""


class PortInUse(NodeError):
    """A port this tool wants (the node's, the proxy's) is held by a process it did not
    start."""


class ClusterUnavailable(LtrrError):
    """An OpenSearch cluster did not answer, or answered with something that is not OpenSearch."""


class PluginNotInstalled(LtrrError):
    """A cluster lacks a plugin that a feature needs (k-NN, LTR)."""


class HttpError(LtrrError):
    """A request the proxy answers itself, in OpenSearch's error JSON, so clients parse it."""

    status = 500
    error_type = "exception"

    def __init__(
        self, reason: str, *, status: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type

    def body(self) -> dict[str, object]:
        cause = {"type": self.error_type, "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


class BadRequest(HttpError):
    """Malformed JSON or an illegal parameter on a request the proxy intercepts."""

    status = 400
    error_type = "parse_exception"


class PayloadTooLarge(HttpError):
    """A body or an ``_msearch`` over the proxy's caps."""

    status = 413
    error_type = "content_too_long_exception"


class Forbidden(HttpError):
    """A request the proxy will not serve for this caller: no proof it may (a feedback token,
    an admin token)."""

    status = 403
    error_type = "security_exception"


class DeadlineExceeded(HttpError):
    """An intercepted search found nothing to answer with before its catalog's deadline, or
    OpenSearch did not answer a forwarded request in time."""

    status = 504
    error_type = "timeout_exception"


class UnknownDecision(BadRequest):
    """Feedback for a decision this proxy never made, or whose window has closed."""

    error_type = "illegal_argument_exception"


class InvalidEvent(BadRequest):
    """A feedback event its decision or catalog cannot take (type, object, count)."""

    error_type = "illegal_argument_exception"


class EventLogError(LtrrError):
    """The durable event log cannot be used safely: locked elsewhere, corrupt, closed, or a
    write failed."""
