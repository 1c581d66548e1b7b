"""Errors the region model reports: one per problem, each pinned to a file position.

The loader collects every problem it finds before failing, so a user fixing a region sees the
whole list at once instead of one error per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Position:
    """Where a value stands in a region file (1-based line and column)."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class ModelError:
    """One problem in a region: where, which model path, what is wrong, how to fix it."""

    path: str
    message: str
    hint: str
    position: Position | None = None

    def render(self) -> str:
        where = f"{self.position}: " if self.position else ""
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}\n    fix: {self.hint}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": str(self.position.file) if self.position else None,
            "line": self.position.line if self.position else None,
            "column": self.position.column if self.position else None,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class HcopsError(Exception):
    """A failure the user can act on: printed as message and hint, never as a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class RegionInvalid(HcopsError):
    """A region failed to load; carries every problem found."""

    def __init__(self, region: str, errors: list[ModelError]) -> None:
        self.region = region
        self.errors = errors
        count = len(errors)
        super().__init__(
            f"region {region!r} is invalid ({count} problem{'s' if count != 1 else ''})",
            "fix the problems listed above, then run `hcops inventory validate` again",
        )

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)
