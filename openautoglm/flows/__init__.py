"""Prefect flows: wiring only. Parameters are pydantic models, so they show up as forms in the Prefect UI."""

from openautoglm._env import apply_defaults

apply_defaults()
