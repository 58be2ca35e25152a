"""The proxy side of opensearch-ltrr: serving, passthrough, the CLI and the local dev node."""
