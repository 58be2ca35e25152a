"""The root of every error opensearch-ltrr raises on purpose, in the lowest layer so that every
layer can raise into it.

Callers catch ``LtrrError`` for "our fault or the setup's", and the narrower classes when they
can do something about it. Each message says what was wrong and what to do next. The tree,
by layer (each class lives beside the code that raises it):

    LtrrError                                  ltrr.bandit.errors
    ├── PolicyConfigError (also ValueError)    ltrr.bandit.policies.base
    ├── CatalogError (also ValueError)         ltrr.query_plans.catalog.reader
    ├── TemplateError                          ltrr.query_plans.templates
    ├── EmbedderError                          ltrr.query_plans.embed
    ├── RerankError                            ltrr.query_plans.rerank
    ├── HybridError (also ValueError)          ltrr.query_plans.hybrid
    ├── UpstreamError                          ltrr.plugin.runtime.upstream
    │   └── UpstreamTimeout
    ├── the serving and operations errors      ltrr.plugin.errors
    │   ├── HttpError: BadRequest (UnknownDecision, InvalidEvent), PayloadTooLarge
    │   │   (the one mapping to OpenSearch's error JSON: ``HttpError.body``)
    │   ├── NodeError: ProvisionError, JavaNotFound, NodeStartError, PortInUse
    │   └── ClusterUnavailable, PluginNotInstalled, EventLogError
    └── simulator input                        ltrr.plugin.ops.simulate
        └── PopulationError, InvalidRuns, ClickModelError (also ValueError)

Private ones (a bad log frame, a malformed bulk, a skipped UBI document) derive from it too;
``tests/bandit/test_errors.py`` walks every module and fails on any that does not.

The ``ValueError`` bases are kept where callers (and argparse-style validation) already
treat those as bad input.
"""

from __future__ import annotations


class LtrrError(Exception):
    """Base of every error this package raises on purpose."""
