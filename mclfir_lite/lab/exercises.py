"""Self-checking exercises: each exercise of a notebook has a check function here.

A student copy keeps the call, e.g. ``exercises.check("04.1", answer)``. The check says
"correct", or gives a hint without printing the solution; an unanswered stub (``None`` or
``...``) gets "not yet", never an error, so a student copy runs top to bottom.

Checks are registered with :func:`exercise`; each returns ``None`` when the answer is
right, or a hint (a string) when it is not. The registry and checker are in
:mod:`~mclfir_lite.lab.exercise_registry`, the checks in :mod:`~mclfir_lite.lab.exercises_00_04`
and :mod:`~mclfir_lite.lab.exercises_05_11` (one section per notebook).

**Strict mode.** In a notebook that holds the reference solutions, a wrong answer means the
solution (or its check) broke. Under nbmake, in CI (``CI=true``) or with
``MCLFIR_STRICT_EXERCISES=1``, :func:`check` raises :class:`ExerciseError` for an answer that
fails its check, so the run fails instead of printing a hint nobody reads. An unanswered stub
still only says "not yet" (student copies run top to bottom in every mode).
``MCLFIR_STRICT_EXERCISES=0`` turns strict mode off.
"""
from __future__ import annotations

from .exercise_registry import CHECKS, ExerciseError, check, exercise, strict
from . import exercises_00_04, exercises_05_11  # noqa: F401  (importing them registers their checks)

NOTEBOOK_CHECKS = {"00-04": exercises_00_04, "05-11": exercises_05_11}

__all__ = ["exercise", "check", "CHECKS", "ExerciseError", "strict"]
