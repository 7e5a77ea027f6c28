"""Zhipu GLM through the zhipuai SDK.

The SDK's own retries are switched off (``max_retries=0``): :class:`GenerativeBackend` retries with jittered
backoff and adapts its concurrency, and counts every call. Errors are sorted by HTTP status and Zhipu's business
code: 429/1302/1303/1305 and 5xx and timeouts are retried (1302/429 also lower the concurrency); 400s, 1301
(content judged unsafe), 401 and 1113 (account in arrears) are not, and the last two stop the batch.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from openautoglm.adapters.models.base import BackendCallError, Completion, GenerativeBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.prompts import Message

#: Model names served by the Zhipu API (any ``glm-*`` name is accepted; these are the documented ones).
KNOWN_MODELS = (
    "glm-4",
    "glm-4-plus",
    "glm-4-air",
    "glm-4-airx",
    "glm-4-flash",
    "glm-4-flashx",
    "glm-4-long",
    "glm-4.5",
    "glm-4.5-air",
    "glm-4.6",
)

_RETRY_CODES = {"1302", "1303", "1305", "500"}
_THROTTLE_CODES = {"1302"}
_FATAL_CODES = {"1000", "1001", "1002", "1003", "1004", "1113"}


def _business_code(error: Any) -> str | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return None
    code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
    return str(code) if code is not None else None


def classify_error(error: Exception) -> BackendCallError:
    """Map a zhipuai SDK exception to a :class:`BackendCallError` with the right retry policy."""
    from zhipuai.core._errors import APIConnectionError, APIStatusError, APITimeoutError

    if isinstance(error, APITimeoutError):
        return BackendCallError("request timed out", code="timeout", retryable=True)
    if isinstance(error, APIConnectionError):
        return BackendCallError("cannot connect to the Zhipu API", code="connection", retryable=True)
    if isinstance(error, APIStatusError):
        status = error.status_code
        code = _business_code(error) or str(status)
        message = str(error)[:300]
        if code in _FATAL_CODES or status == 401:
            hint = "account in arrears" if code == "1113" else "authentication failed: check the API key"
            return BackendCallError(f"{hint} ({message})", code=code, retryable=False, fatal=True)
        if status == 429 or code in _RETRY_CODES or status >= 500:
            throttled = status == 429 or code in _THROTTLE_CODES
            return BackendCallError(message, code=code, retryable=True, throttled=throttled)
        return BackendCallError(message, code=code, retryable=False)
    return BackendCallError(f"{type(error).__name__}: {error}"[:300], code="client", retryable=False)


class ZhipuBackend(GenerativeBackend):
    """GLM models on the Zhipu API (``glm-4``, ``glm-4-flash``, ``glm-4-plus``, ``glm-4-air``...).

    Args:
        model: The model name.
        api_key: The key (``<id>.<secret>``); from a ``ZhipuAICredentials`` block or ``ZHIPUAI_API_KEY``.
        base_url: Endpoint (default: the SDK's, or ``ZHIPUAI_BASE_URL``).
        timeout_s: Per-call timeout.
        **options: See :class:`GenerativeBackend`.
    """

    kind = "zhipu"

    def __init__(
        self,
        model: str,
        *,
        api_key: SecretStr | None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        if api_key is None:
            raise ConfigurationError(
                f"No Zhipu API key for model '{model}'.",
                hint="export ZHIPUAI_API_KEY=<id>.<secret> or save a ZhipuAICredentials block "
                "(openautoglm.blocks); to run offline instead use model='local-use' (classification, matching) "
                "or model='local-lac' (Chinese NER)",
            )
        from zhipuai import ZhipuAI

        self._client = ZhipuAI(api_key=api_key.get_secret_value(), base_url=base_url, timeout=timeout_s, max_retries=0)

    def complete(self, messages: list[Message]) -> Completion:
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature or None,
                do_sample=self.temperature > 0,
                max_tokens=self.max_tokens,
            )
        except Exception as error:
            raise classify_error(error) from None
        choice = response.choices[0]
        if choice.finish_reason == "sensitive":
            raise BackendCallError("the answer was filtered as sensitive (1301)", code="1301", retryable=False)
        usage = getattr(response, "usage", None)
        return Completion(text=choice.message.content or "", tokens=int(getattr(usage, "total_tokens", 0) or 0))
