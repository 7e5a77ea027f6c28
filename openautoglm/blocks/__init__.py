"""Prefect blocks: credentials kept as secrets on the Prefect server, never in flow parameters."""

from openautoglm.blocks.credentials import ZhipuAICredentials

__all__ = ["ZhipuAICredentials"]
