"""Prefect tasks: thin wrappers over ``core`` and ``adapters`` (retries, cache policy, tags)."""

from openautoglm._env import apply_defaults

apply_defaults()
