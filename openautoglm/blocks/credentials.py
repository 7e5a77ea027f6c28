"""Credentials blocks.

Save once (the key is stored encrypted-at-rest by Prefect and shown masked in the UI)::

    ZhipuAICredentials(api_key="<id>.<secret>").save("zhipu", overwrite=True)

then name the block in a flow run (``credentials_block="zhipu"``) or the CLI (``--credentials zhipu``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from openautoglm.core.errors import ConfigurationError

if TYPE_CHECKING:
    from openautoglm.adapters.models import ModelSpec


class ZhipuAICredentials(Block):
    """An API key for the Zhipu (bigmodel.cn) GLM API, and optionally another endpoint."""

    _block_type_name = "Zhipu AI Credentials"
    _description = "API key (and optional base URL) for Zhipu's GLM models."

    api_key: SecretStr = Field(description="The key, of the form <id>.<secret>.")
    base_url: str | None = Field(default=None, description="Endpoint; default https://open.bigmodel.cn/api/paas/v4/")


def resolve_zhipu_key(block_name: str | None) -> SecretStr | None:
    """The key from the named block, else from ``ZHIPUAI_API_KEY``; ``None`` when neither is set."""
    if block_name:
        try:
            block: Any = ZhipuAICredentials.load(block_name)
            return SecretStr(block.api_key.get_secret_value())
        except ValueError as error:
            raise ConfigurationError(
                f"No ZhipuAICredentials block named '{block_name}' on the Prefect server.",
                hint="save one: ZhipuAICredentials(api_key='...').save('" + block_name + "')",
            ) from error
    value = os.environ.get("ZHIPUAI_API_KEY")
    return SecretStr(value) if value else None


def api_key_for(spec: ModelSpec, block_name: str | None) -> SecretStr | None:
    """The API key a model needs (:func:`resolve_zhipu_key`), or ``None`` for a model that needs none."""
    return resolve_zhipu_key(block_name) if spec.remote else None
