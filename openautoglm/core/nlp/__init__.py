"""NLP task definitions: configuration, prompts, strict output parsing and metrics. Pure; no model calls."""
