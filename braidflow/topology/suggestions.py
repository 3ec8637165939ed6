"""Did you mean: the closest known name to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name `word` most likely misspells, or None when none is close."""
    matches = difflib.get_close_matches(word, [k for k in known if k != word], n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest known name, or `` when none is close."""
    found = closest(word, known)
    return f"; did you mean {found!r}?" if found is not None else ""
