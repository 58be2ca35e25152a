"""The live report: what the proxy decided and earned on a real cluster, over a recent period."""
