"""The proxy side of opensearch-ltrr, in layers that import only downwards:

    ops      the ``ltrr`` command, node, data, simulate, bench, ope, LTR training, reports
    serve    the HTTP front and the search path (decide, plan, retrieve, fuse, rerank, respond)
    learn    feedback intake, the durable event log, shipping, memory writes, state sync
    runtime  catalogs with their agents, entities, the upstream transport, counters

Below them: ``ltrr.query_plans`` (catalog, templates, plans, fusion) and ``ltrr.bandit``.
``errors`` is shared by all four and imports only the root in ``ltrr.bandit.errors``.
"""
