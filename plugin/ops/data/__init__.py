"""Datasets for search-ops tooling: BEIR collections, the music benchmark, indexing."""
