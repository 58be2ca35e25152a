"""Every error opensearch-ltrr raises on purpose, in one place.

Callers catch ``LtrrError`` for "our fault or the setup's", and the narrower classes when they
can do something about it. Each message says what was wrong and what to do next.
"""

from __future__ import annotations


class LtrrError(Exception):
    """Base of every error this package raises on purpose."""


class NodeError(LtrrError):
    """The local OpenSearch node could not be provisioned, started, queried or stopped."""


class ProvisionError(NodeError):
    """An artifact could not be fetched from Maven Central, or the node home not assembled."""


class JavaNotFound(NodeError):
    """No Java runtime that this OpenSearch version supports was found."""


class NodeStartError(NodeError):
    """The node process exited or never turned green; the message carries the log tail."""


class PortInUse(NodeError):
    """Something this tool did not start already answers on the node's port."""


class ClusterUnavailable(LtrrError):
    """An OpenSearch cluster did not answer, or answered with something that is not OpenSearch."""


class PluginNotInstalled(LtrrError):
    """A cluster lacks a plugin that a feature needs (k-NN, LTR)."""
