"""Automated graph learning: meta-features, the search space and its ops, searchers, HPO and the trainer."""
