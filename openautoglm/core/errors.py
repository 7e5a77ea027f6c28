"""Typed errors. Each one says what went wrong and what to do next.

The CLI and the flows print ``str(error)``; no user should need the traceback to act.
"""

from __future__ import annotations


class OpenAutoGLMError(Exception):
    """Base class of every error this package raises on purpose.

    Args:
        message: What went wrong, naming the file, line, column or setting involved.
        hint: What to do next. Printed on its own line after the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class ConfigurationError(OpenAutoGLMError, ValueError):
    """A setting, parameter or option is invalid."""


class NotRegisteredYet(ConfigurationError):
    """A registry alias (``mlflow:/name@alias``) names no version yet: nothing has been registered under it (a
    labelling loop before its first training round). A server may start and wait for it."""


class ResolveError(OpenAutoGLMError, ValueError):
    """A name could not be found in a registry."""


class DataSourceError(OpenAutoGLMError):
    """A data source cannot be opened or read (missing file, bad URL, driver absent)."""


class SourceUnavailableError(DataSourceError):
    """A source that may come back (a database that refuses connections); worth retrying."""


class EncodingDetectionError(DataSourceError):
    """A file's text encoding could not be detected or does not decode."""


class MissingColumnsError(DataSourceError, KeyError):
    """Requested columns are absent from the source."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return Exception.__str__(self)


class MalformedRecordError(DataSourceError):
    """A record cannot be parsed (a JSONL line that is not JSON, a CSV row with the wrong field count).

    Attributes:
        location: ``file:line`` (or ``source:record``) of the bad record.
    """

    def __init__(self, message: str, *, location: str, hint: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}", hint=hint)


class ValidationGateError(OpenAutoGLMError):
    """The data failed validation and the gate mode is ``fail``.

    Attributes:
        summary: A readable multi-line summary of the failed expectations.
    """

    def __init__(self, summary: str, *, hint: str | None = None) -> None:
        self.summary = summary
        super().__init__(f"Validation failed:\n{summary}", hint=hint)


class AccountingError(OpenAutoGLMError):
    """Rows were lost: rows in != rows out + rows quarantined. Always a bug; please report it."""
