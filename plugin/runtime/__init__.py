"""What a running proxy holds: the catalogs with their agents, the entity dictionaries, the
upstream transport and the counters. Serving and learning both stand on it.
"""
