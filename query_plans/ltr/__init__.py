"""Learning-to-rank: featuresets from a catalog, judgments, training, model export."""
