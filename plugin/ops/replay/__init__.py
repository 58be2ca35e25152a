"""Replayed simulations: captured arm lists, every plan, several seeds, held-out queries."""
