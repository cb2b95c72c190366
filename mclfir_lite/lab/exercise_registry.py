"""The exercises' registry and checker (:mod:`mclfir_lite.lab.exercises` is what notebooks
import): :func:`exercise` registers a check, :func:`check` runs it, and the helpers the checks
share (:func:`choices_hint`, :func:`near`, :func:`close_hint`). See
:mod:`mclfir_lite.lab.exercises` for the rules (hints, stubs, strict mode)."""
from __future__ import annotations

import os
from typing import Callable

__all__ = ["exercise", "check", "CHECKS", "ExerciseError", "strict", "choices_hint", "near", "close_hint"]


class ExerciseError(AssertionError):
    """A notebook's answer (its reference solution) failed the exercise's check in strict mode."""


def strict() -> bool:
    """True under nbmake, in CI (``CI`` true) or with ``MCLFIR_STRICT_EXERCISES=1``; ``=0`` wins.

    nbmake is detected through ``PYTEST_CURRENT_TEST``, which pytest sets while a test runs and
    the notebook's kernel inherits: it names the ``.ipynb`` being run."""
    flag = os.environ.get("MCLFIR_STRICT_EXERCISES", "").strip().lower()
    if flag:
        return flag in {"1", "true", "yes", "on"}
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    return ".ipynb" in os.environ.get("PYTEST_CURRENT_TEST", "")

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
    True only when correct. ``context`` is whatever the check needs from the notebook.
    In strict mode (see :func:`strict`) a wrong answer raises :class:`ExerciseError`."""
    if key not in CHECKS:
        raise KeyError(f"no exercise {key!r}; known: {sorted(CHECKS)}")
    if _unanswered(answer):
        if strict():   # a reference solution that lost its answer must not pass as "not yet"
            raise ExerciseError(f"exercise {key}: the notebook gives no answer ({answer!r}); a solution notebook "
                                "answers every exercise (strict mode: nbmake, CI=true or MCLFIR_STRICT_EXERCISES=1; "
                                "a learner's copy runs with MCLFIR_STRICT_EXERCISES=0)")
        print(f"exercise {key}: not yet answered (replace the ... with your answer and run the cell again)")
        return False
    try:
        hint = CHECKS[key](answer, *context)
    except Exception as err:  # a wrong type or shape is a hint, not a crash
        hint = f"your answer could not be checked ({type(err).__name__}: {err})"
    if hint:
        if strict():
            raise ExerciseError(f"exercise {key}: the notebook's answer fails its check ({hint}); "
                                "fix the reference solution or the check (strict mode: nbmake, CI=true "
                                "or MCLFIR_STRICT_EXERCISES=1)")
        print(f"exercise {key}: not yet. Hint: {hint}")
        return False
    print(f"exercise {key}: correct")
    return True


# ---------------------------------------------------------------------------- shared by the checks

def choices_hint(answer, expected: dict, hints: dict) -> str | None:
    """Multiple-choice answers ``{question: "a"}`` against ``expected``; a hint naming each
    unanswered or wrong question (never the right letter), or None when all are right."""
    if not isinstance(answer, dict):   # the example's letter is a wrong one: a format, not a hint
        q = next(iter(expected))
        wrong = next(c for c in "abcd" if c != expected[q])
        return f"give a dict {{question number: letter}}, e.g. {{{q}: \"{wrong}\"}}"
    notes = []
    for q, right in expected.items():
        given = answer.get(q, ...)
        if given is ... or given is None:
            notes.append(f"question {q} not answered yet")
        elif str(given).strip().lower().strip("()") != right:
            notes.append(f"question {q}: {hints.get(q, 'read that section again')}")
    return "; ".join(notes) or None


def near(answer, expected, tol: float) -> bool:
    return abs(float(answer) - float(expected)) <= tol


def close_hint(answer: dict, expected: dict, tol: float, what: str) -> str | None:
    """A dict of numbers against the expected dict, key by key, within ``tol``."""
    missing = sorted(set(expected) - set(answer))
    if missing:
        return f"{what}: no value for {missing}"
    off = [k for k in expected if not near(answer[k], expected[k], tol)]
    return f"{what}: not right for {off}" if off else None
