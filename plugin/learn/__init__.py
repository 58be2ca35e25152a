"""Learning I/O: what users did comes back, is made durable, rewards the arms and feeds the memory.

``learner`` is the one entry point the serving layer uses; below it ``records`` keeps each
decision for its feedback window, ``intake`` validates and commits events, ``feedback`` parses
them, ``eventlog`` makes them durable, ``shipping`` copies them to ``ltrr-events``, ``memorize``
writes learned query-to-entity scores, ``sync`` shares bandit statistics between replicas, and
``bulk`` owns the proxy's own indices.
"""
