"""Self-checking exercises: each exercise of a notebook has a check function here.

A student copy keeps the call, e.g. ``exercises.check("04.1", answer)``. The check says
"correct", or gives a hint without printing the solution; an unanswered stub (``None`` or
``...``) gets "not yet", never an error, so a student copy runs top to bottom.

Checks are registered with :func:`exercise`; each returns ``None`` when the answer is
right, or a hint (a string) when it is not.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["exercise", "check", "CHECKS"]

CHECKS: dict[str, Callable] = {}


def exercise(key: str):
    """Register a check function under ``key`` ("<notebook>.<number>", e.g. "04.1")."""
    def register(fn: Callable) -> Callable:
        if key in CHECKS:
            raise ValueError(f"exercise {key!r} registered twice")
        CHECKS[key] = fn
        return fn
    return register


def _unanswered(answer) -> bool:
    return answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip())


def check(key: str, answer, *context) -> bool:
    """Check ``answer`` for exercise ``key``; prints "correct", "not yet" or a hint and returns
    True only when correct. ``context`` is whatever the check needs from the notebook."""
    if key not in CHECKS:
        raise KeyError(f"no exercise {key!r}; known: {sorted(CHECKS)}")
    if _unanswered(answer):
        print(f"exercise {key}: not yet answered (replace the ... with your answer and run the cell again)")
        return False
    try:
        hint = CHECKS[key](answer, *context)
    except Exception as err:  # a wrong type or shape is a hint, not a crash
        hint = f"your answer could not be checked ({type(err).__name__}: {err})"
    if hint:
        print(f"exercise {key}: not yet. Hint: {hint}")
        return False
    print(f"exercise {key}: correct")
    return True


# Checks, one section per notebook (keep each notebook's checks in its own section).

# --- notebook 00

# --- notebook 01

# --- notebook 02

# --- notebook 03

# --- notebook 04

# --- notebook 05

# --- notebook 06

# --- notebook 07

# --- notebook 08

# --- notebook 09

# --- notebook 10
