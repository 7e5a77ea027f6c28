"""Prompt optimisation: budgets, candidates and the search strategies (pure logic; models come in as callables)."""
