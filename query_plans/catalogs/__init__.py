"""Example strategy catalogs shipped with the package (music benchmark, BEIR corpus)."""
