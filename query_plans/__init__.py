"""Strategy catalogs, arm templates, the one-``_msearch`` plan, fusion and the LTR rerank.

Plans see arms and sizes, never how they were chosen, and never HTTP.
"""
