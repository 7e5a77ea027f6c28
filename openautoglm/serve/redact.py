"""Secrets out of every log line: bearer tokens, JWTs and credential query parameters are replaced by
``[REDACTED]`` when a log record is made, whoever makes it (uvicorn's access log writes the request line with its
query string, so ``GET /api/v1/jobs?token=eyJ...`` would otherwise be written whole).

It is done once, in the log record factory (:func:`install_log_redaction`), rather than in each handler or
formatter: uvicorn's access formatter, pytest's capture, Prefect's API handler and any handler added later all see
the same redacted record. The message, its arguments (uvicorn's formatter reads them one by one) and a formatted
traceback are redacted.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

#: What counts as a secret in a log line: a JWT (a base64url JSON header, ``eyJ`` being ``{"``, and its
#: dot-separated segments), an ``Authorization`` scheme's credentials, and the value after a credential's name
#: (``token=``, ``access_token=``, ``client_secret=``, ``api_key:``, ``"password": "``...). Linear: no pattern
#: starts with an unbounded repeat, so a long line costs one pass.
_SECRETS = re.compile(
    r"(?P<jwt>eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)*)"
    r"|(?P<name>(?i:token|secret|password|passwd|api[_-]?key|apikey|jwt|authorization)[\"']?\s*[=:]\s*[\"']?"
    r"|\b(?i:bearer|basic)\s+)"
    r"(?:(?i:bearer|basic)\s+)?[^\s&\"';#,}]+"
)
#: Argument types that cannot hold a secret (left as they are, so ``%d`` and ``%.2f`` still format them).
_PLAIN = (int, float, bool, type(None))


#: Lower-case fragments of which :data:`_SECRETS` needs one to match: most lines have none and skip the regex.
_HINTS = ("eyj", "token", "secret", "passw", "key", "jwt", "authoriz", "bearer", "basic")


def redact(text: str) -> str:
    """``text`` with every secret :data:`_SECRETS` finds replaced by ``[REDACTED]`` (a credential's name kept)."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text
    return _SECRETS.sub(lambda m: REDACTED if m.group("jwt") else m.group("name") + REDACTED, text)


def _redacted(value: Any) -> Any:
    """``value`` as it is, or its redacted text if that text held a secret."""
    if isinstance(value, _PLAIN):
        return value
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a broken __str__ must not turn a log call into an error of its caller
        return value
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record in place (message, arguments, traceback, stack) and return it."""
    if isinstance(record.args, Mapping):
        record.args = {k: _redacted(v) for k, v in record.args.items()}
    elif record.args:
        record.args = tuple(_redacted(a) for a in record.args)
    message = _redacted(record.msg)
    if message is not record.msg and record.args:
        # A secret in the format string itself ("Bearer %s"): redacting it could eat a placeholder, so the
        # message is rendered (arguments already redacted) and redacted whole. uvicorn's access format never
        # gets here, so its formatter still finds the request line in the arguments.
        with contextlib.suppress(Exception):  # a broken call (bad placeholders): logging could not render it either
            message = redact(record.getMessage())
        record.args = ()
    record.msg = message
    if record.exc_info and not record.exc_text:
        # Formatters reuse a record's exc_text, so the traceback is formatted (once) and redacted here.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class _RedactingFactory:
    """The log record factory: the one before it, then :func:`redact_record`."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(self.base(*args, **kwargs))


def install_log_redaction() -> None:
    """Redact every log record this process makes from now on (idempotent; wraps the current record factory)."""
    if not isinstance(logging.getLogRecordFactory(), _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(logging.getLogRecordFactory()))
