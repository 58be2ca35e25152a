"""Simulated users through the real proxy: click models, contexts, policy line-ups, metrics."""
