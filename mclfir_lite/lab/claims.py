"""Claims as code: a sentence that states a result is checked, next to it, on the numbers
that were just computed.

    claim("finetune forgets at least 4x as much as mclfir",
          forgetting["finetune"] >= 4 * forgetting["mclfir"])

    claim_greater("joint ends above mclfir", joint_map, mclfir_map, margin=0.02)

A true claim prints ``✓ <sentence>`` (so the notebook shows what was checked); a false
one raises :class:`ClaimError` naming the sentence and the numbers, which fails the
notebook (nbmake, ``make notebooks``) instead of leaving a false sentence on the page.
Evidence that cannot be false (NaN, ``[]``, ``"False"``, None, a bare number) is refused
with a :class:`ClaimError` too: see :func:`claim`.

With several seeds, :func:`claim_greater` compares means and only calls a difference a
difference when it exceeds ``margin`` *and* the seeds' spread (the larger of the two
standard deviations): otherwise the honest sentence is "no difference here", and
:func:`claim_no_difference` checks that one.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["ClaimError", "claim", "claim_greater", "claim_no_difference", "spread", "differs", "REMEASURE_MEANAP",
           "remeasure_tolerance"]

# How far a re-measured MeanAP may fall from a committed benchmark's (notebook 07 against the
# strategies benchmark, tests/test_remeasure.py against ema_teacher, ema_regimes and tuning):
# identical on the benchmark's kind of CPU; another CPU rounds differently and training amplifies
# it, so twice the largest change another CPU has made to a re-measured MeanAP, rounded up. That
# was 0.015 (a seed-0 run of the strategies benchmark, AMD EPYC against Intel Xeon, 2026-12-05)
# until CI's re-measurement on an Intel Xeon moved EWC at lambda 1 on validation seed 101 by
# 0.043 from the AMD EPYC's tuning result (2026-12-06): 0.04 was too tight.
REMEASURE_MEANAP = 0.09
# On the benchmark's own kind of CPU a re-measured run is the very same run: identical to the four
# decimals the notebooks print.
SAME_CPU_MEANAP = 5e-5


def remeasure_tolerance(cpu_then: str | None, cpu_now: str | None) -> float:
    """How far a re-measured MeanAP may fall from a committed one: :data:`SAME_CPU_MEANAP` when both
    were measured on the same CPU model (one torch thread: the same run), :data:`REMEASURE_MEANAP`
    otherwise or when either CPU is not recorded."""
    return SAME_CPU_MEANAP if cpu_then and cpu_now and cpu_then == cpu_now else REMEASURE_MEANAP


class ClaimError(AssertionError):
    """A sentence in a notebook that the numbers under it do not support."""


def _evidence(sentence: str, holds) -> np.ndarray:
    """``holds`` as a non-empty boolean array, or :class:`ClaimError` saying why it is not evidence.

    Evidence is the result of a comparison: a Python or numpy bool, a non-empty list/tuple of
    bools, or a non-empty boolean numpy array or torch tensor. Everything else is refused, numbers
    included (0 and 1 too): ``claim(s, gap)`` with a gap of 0.03 would otherwise pass, and
    ``np.all`` of NaN, ``[]`` or ``"False"`` is truthy. Write the comparison: ``claim(s, gap > 0.02)``.
    """
    if hasattr(holds, "detach") and hasattr(holds, "cpu"):          # a torch tensor, without importing torch
        holds = holds.detach().cpu().numpy()
    if isinstance(holds, (bool, np.bool_)):
        return np.asarray(holds)
    if isinstance(holds, (str, bytes)):
        raise ClaimError(f"claim {sentence!r}: the evidence is the string {holds!r}, not a comparison "
                         "(a non-empty string is always truthy); pass the comparison itself")
    if holds is None:
        raise ClaimError(f"claim {sentence!r}: the evidence is None (did a function return nothing?)")
    if isinstance(holds, (list, tuple, np.ndarray)):
        try:
            a = np.asarray(holds)
        except ValueError as err:                                    # ragged nesting
            raise ClaimError(f"claim {sentence!r}: the evidence cannot be read as booleans ({err})") from None
        if a.size == 0:
            raise ClaimError(f"claim {sentence!r}: the evidence is empty ({holds!r}): all() of nothing "
                             "is True, so it would prove nothing")
        if a.dtype != bool:
            raise ClaimError(f"claim {sentence!r}: the evidence must be booleans, got dtype {a.dtype} "
                             f"({_short(holds)}); compare the numbers, e.g. values > threshold")
        return a
    if isinstance(holds, (int, float, np.number)):
        what = "NaN" if isinstance(holds, (float, np.floating)) and np.isnan(holds) else f"the number {holds!r}"
        raise ClaimError(f"claim {sentence!r}: the evidence is {what}, not a comparison; "
                         "write the comparison (e.g. gap > margin) so that a claim can fail")
    raise ClaimError(f"claim {sentence!r}: the evidence is a {type(holds).__name__} ({_short(holds)}), "
                     "not a boolean or an array of booleans")


def _short(x, n: int = 60) -> str:
    r = repr(x)
    return r if len(r) <= n else r[:n] + "..."


# What a claim written after its run prints before its sentence.
AFTER = "(written after the run, a guard) "


def when_written(sentence: str) -> tuple[str, str]:
    """``(sentence without the mark, "before" or "after")`` of a sentence a claim printed: the
    inverse of :func:`claim`'s ``written`` (how ``notebooks/expected_numbers.py`` reads it)."""
    return (sentence[len(AFTER):], "after") if sentence.startswith(AFTER) else (sentence, "before")


def claim(sentence: str, holds, detail: str = "", written: str = "before") -> bool:
    """Check ``holds`` and print the checked sentence, or raise :class:`ClaimError` with
    ``detail`` (the numbers) when it is false.

    ``holds`` must be evidence that can be false: a bool (Python or numpy), or a non-empty
    list, tuple, numpy array or torch tensor of bools (all must be true). NaN, None, numbers
    (0 and 1 included), strings and empty containers raise :class:`ClaimError` too: each of
    them would pass ``np.all`` without checking anything.

    ``written``: ``"before"`` the run (an expectation, the rule) or ``"after"`` it (a finding
    that refuted an expectation, kept as a guard so that it fails when the code changes it):
    the printed line then says so (:data:`AFTER`), and so does the instructor page.
    """
    if written not in ("before", "after"):
        raise ValueError(f"claim(written=...) is 'before' or 'after' the run, got {written!r}")
    ok = bool(np.all(_evidence(sentence, holds)))
    if not ok:
        raise ClaimError(f"claim does not hold: {sentence}" + (f" ({detail})" if detail else ""))
    print(checked_line(AFTER + sentence if written == "after" else sentence, detail))
    return True


def checked_line(sentence: str, detail: str = "") -> str:
    """The line a true claim prints: ``✓ <sentence>``, then ``  [<detail>]`` when there is one."""
    return f"✓ {sentence}" + (f"  [{detail}]" if detail else "")


_CHECKED = re.compile(r"^✓ (?P<sentence>.+?)(?:\s{2}\[(?P<detail>.*)\])?\s*$")


def parse_checked(line: str) -> tuple[str, str] | None:
    """``(sentence, detail)`` of a line :func:`checked_line` wrote (detail "" when none); None
    for any other line (how ``notebooks/expected_numbers.py`` reads a notebook's outputs)."""
    m = _CHECKED.match(line)
    return (m["sentence"], m["detail"] or "") if m else None


def _values(x) -> np.ndarray:
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if a.size == 0 or np.isnan(a).any():
        raise ClaimError(f"a claim needs numbers, got {x!r}")
    return a


def spread(x) -> float:
    """The seeds' spread: the standard deviation (ddof 0) of one value per seed; 0 for one seed."""
    return float(np.std(_values(x)))


def differs(a, b, margin: float = 0.0) -> float:
    """``mean(a) - mean(b)`` when it exceeds both ``margin`` and the larger seed spread, else 0.0."""
    a, b = _values(a), _values(b)
    gap = float(a.mean() - b.mean())
    need = max(margin, spread(a), spread(b))
    return gap if abs(gap) > need else 0.0


def _fmt(x) -> str:
    a = _values(x)
    return f"{a.mean():.3f}" if a.size == 1 else f"{a.mean():.3f} ± {a.std():.3f} (n={a.size})"


def claim_greater(sentence: str, a, b, margin: float = 0.0) -> bool:
    """Claim ``a > b``: ``mean(a) - mean(b)`` must exceed ``margin`` and the seeds' spread.
    ``a`` and ``b`` are numbers or one number per seed."""
    gap = float(_values(a).mean() - _values(b).mean())
    need = max(margin, spread(a), spread(b))
    return claim(sentence, gap > need, f"{_fmt(a)} vs {_fmt(b)}; gap {gap:+.3f}, needs > {need:.3f}")


def claim_no_difference(sentence: str, a, b, margin: float = 0.0) -> bool:
    """Claim that ``a`` and ``b`` do not differ: ``|mean(a) - mean(b)|`` is within ``margin``
    or within the seeds' spread (whichever is larger)."""
    gap = float(_values(a).mean() - _values(b).mean())
    need = max(margin, spread(a), spread(b))
    return claim(sentence, abs(gap) <= need, f"{_fmt(a)} vs {_fmt(b)}; |gap| {abs(gap):.3f}, within {need:.3f}")


