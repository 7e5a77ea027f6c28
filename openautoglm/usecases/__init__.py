"""Use cases: one parameter model and one function each, read by the CLI, flows, stages, SDK and API."""
