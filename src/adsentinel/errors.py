"""Domain errors. Every error says what went wrong, where, and how to fix it.

The CLI maps each class to an exit code (``exit_code``); the API maps them to HTTP statuses.
"""

from __future__ import annotations

from dataclasses import dataclass


class AdsentinelError(Exception):
    """Base class of every error adsentinel reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ConfigError(AdsentinelError):
    """Invalid settings (environment, .env file or arguments)."""

    exit_code = 78  # EX_CONFIG


class StorageError(AdsentinelError):
    """The database cannot be reached, created or migrated."""

    exit_code = 69  # EX_UNAVAILABLE


class NotFoundError(AdsentinelError):
    """A named account, entity or object does not exist."""

    exit_code = 66  # EX_NOINPUT


@dataclass(frozen=True)
class InputProblem:
    """One problem found in an input file, located precisely."""

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.column:
            where += f" column {self.column!r}"
        return f"{where}: {self.message}"


class InputFileError(AdsentinelError):
    """An input file is malformed; nothing of it was written."""

    exit_code = 65  # EX_DATAERR

    def __init__(self, problems: list[InputProblem], *, total: int | None = None,
                 hint: str | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "\n  ".join(str(p) for p in problems)
        more = self.total - len(problems)
        suffix = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{self.total} problem(s) in input, nothing was imported:\n  {shown}{suffix}",
            hint=hint,
        )


class ModelStoreError(AdsentinelError):
    """The model store cannot be written or read."""

    exit_code = 74  # EX_IOERR
