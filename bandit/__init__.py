"""Contextual bandits that decide which arms to ask and for how many candidates.

Policies see numbers (features, rewards), never HTTP or OpenSearch DSL.
"""
