"""Serving: the HTTP front and the search path, one step per module.

``server`` routes; ``intercept`` reads a search; ``search`` runs the steps ``decide``, ``plan``,
``retrieve``, ``fuse``, ``rerank`` and ``respond``, then hands the decision to the learner.
Everything else goes through ``passthrough``. Nothing here imports numpy or a policy: the
bandit is reached only through the runtime's ``Agent``.
"""
