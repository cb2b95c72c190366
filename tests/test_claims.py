"""claims: a true claim prints what was checked, a false one raises; differences inside the seeds' spread are not differences."""
import numpy as np
import pytest

from mclfir_lite.lab.claims import ClaimError, claim, claim_greater, claim_no_difference, differs, spread


def test_true_claim_prints_the_sentence(capsys):
    assert claim("two is more than one", 2 > 1, "2 vs 1") is True
    assert capsys.readouterr().out.strip() == "✓ two is more than one  [2 vs 1]"


def test_false_claim_raises_with_sentence_and_numbers():
    with pytest.raises(ClaimError, match=r"one is more than two \(1 vs 2\)"):
        claim("one is more than two", 1 > 2, "1 vs 2")


def test_claim_reduces_arrays_with_all():
    claim("all positive", np.array([1, 2, 3]) > 0)
    with pytest.raises(ClaimError):
        claim("all positive", np.array([1, -2, 3]) > 0)


def test_claim_error_is_an_assertion_error():
    """So that nbmake and plain pytest report it as a failed check."""
    assert issubclass(ClaimError, AssertionError)


def test_claim_greater_single_numbers_needs_the_margin():
    claim_greater("a beats b", 0.80, 0.70, margin=0.05)
    with pytest.raises(ClaimError, match="needs > 0.150"):
        claim_greater("a beats b by a wide margin", 0.80, 0.70, margin=0.15)
    with pytest.raises(ClaimError):
        claim_greater("b beats a", 0.70, 0.80)


def test_claim_greater_is_not_fooled_by_a_gap_inside_the_seed_spread():
    a = [0.70, 0.80, 0.90]              # mean 0.80, std 0.082
    b = [0.74, 0.75, 0.76]              # mean 0.75
    assert spread(a) == pytest.approx(np.std(a))
    with pytest.raises(ClaimError, match=r"n=3"):
        claim_greater("a beats b", a, b, margin=0.01)    # gap 0.05 < spread 0.082
    assert differs(a, b, margin=0.01) == 0.0
    claim_no_difference("no difference here", a, b)
    tight = [0.79, 0.80, 0.81]
    claim_greater("a beats b", tight, b, margin=0.01)     # gap 0.05 > spread 0.008
    assert differs(tight, b) == pytest.approx(0.05)


def test_claim_no_difference_fails_on_a_real_gap():
    with pytest.raises(ClaimError, match="within"):
        claim_no_difference("no difference", [0.90, 0.91, 0.92], [0.50, 0.51, 0.52], margin=0.02)


def test_one_seed_has_no_spread():
    assert spread(0.5) == 0.0
    assert differs(0.6, 0.5, margin=0.05) == pytest.approx(0.1)


@pytest.mark.parametrize("bad", [np.nan, [], [0.5, np.nan]])
def test_claims_need_numbers(bad):
    with pytest.raises(ClaimError, match="needs numbers"):
        claim_greater("a beats nothing", bad, 0.1)


@pytest.mark.parametrize("vacuous, why", [
    (np.nan, "NaN"), (float("nan"), "NaN"), ([], "empty"), ((), "empty"), (np.array([]), "empty"),
    ("False", "string"), ("", "string"), (None, "None"), (1, "number"), (0, "number"), (0.03, "number"),
    (np.float64(1.0), "number"), (np.int64(1), "number"), ([0.5, 0.7], "dtype float"), ([1, 0], "dtype int"),
    ({"a": True}, "dict"), ((x for x in [True]), "generator"),
])
def test_claim_refuses_evidence_that_cannot_fail(vacuous, why):
    """np.all(nan), np.all([]) and np.all("False") are all truthy: claim must not pass them."""
    with pytest.raises(ClaimError, match=why):
        claim("something was shown", vacuous)


@pytest.mark.parametrize("evidence, ok", [
    (True, True), (False, False), (np.bool_(True), True), (np.bool_(False), False),
    (np.array([True, True]), True), (np.array([[True], [False]]), False),
    ([True, True], True), ((True, False), False), (np.float64(0.3) > 0.2, True),
])
def test_claim_accepts_booleans(evidence, ok):
    if ok:
        assert claim("holds", evidence)
    else:
        with pytest.raises(ClaimError, match="does not hold"):
            claim("holds", evidence)


def test_claim_accepts_torch_boolean_tensors():
    import torch
    assert claim("all equal", torch.tensor([1, 2]) == torch.tensor([1, 2]))
    with pytest.raises(ClaimError, match="does not hold"):
        claim("all equal", torch.tensor([1, 2]) == torch.tensor([1, 3]))
    with pytest.raises(ClaimError, match="dtype float"):
        claim("a float tensor is not evidence", torch.tensor([1.0]))
    with pytest.raises(ClaimError, match="empty"):
        claim("an empty tensor is not evidence", torch.tensor([], dtype=torch.bool))


def test_benchmark_results_carry_the_code_digest_and_a_stale_one_is_refused(tmp_path, monkeypatch):
    import json
    from mclfir_lite.lab import lab
    from mclfir_lite.files import code_digest
    root = tmp_path / "repo"
    (root / "benchmarks" / "results").mkdir(parents=True)
    (root / "mclfir_lite" / "lab").mkdir(parents=True)
    fake = root / "mclfir_lite" / "lab" / "lab.py"
    monkeypatch.setattr(lab, "__file__", str(fake))
    from mclfir_lite.lab.lab import preset_fields
    now = preset_fields(False)
    entries = {"fresh": {"status": "ok", "code": code_digest(), "preset": now, "quick": False, "result": {"x": 1}},
               "stale": {"status": "ok", "code": "0" * 12, "preset": now, "result": {"x": 2}},
               "old": {"status": "ok", "result": {"x": 3}},
               "nopreset": {"status": "ok", "code": code_digest(), "result": {"x": 4}},
               "otherpreset": {"status": "ok", "code": code_digest(), "quick": False,
                               "preset": {**now, "joint_steps": now["joint_steps"] * 2}, "result": {"x": 5}},
               "quickpreset": {"status": "ok", "code": code_digest(), "quick": True, "preset": now, "result": {"x": 6}}}
    (root / "benchmarks" / "results" / "results.json").write_text(json.dumps({"benchmarks": entries}))
    assert lab.benchmark_result("fresh", require_fresh=True)["_fresh"] is True
    assert lab.benchmark_result("stale", require_fresh=False)["_fresh"] is False
    with pytest.raises(lab.StaleResultError, match="joint_steps"):      # a preset change names the key
        lab.benchmark_result("otherpreset")
    for name in ("stale", "old", "nopreset", "otherpreset", "quickpreset"):
        for kwargs in ({}, {"require_fresh": True}):          # refused by default
            with pytest.raises(lab.StaleResultError, match=f"run_all.py --only {name}"):
                lab.benchmark_result(name, **kwargs)


def test_a_claim_written_after_its_run_says_so(capsys):
    """A finding that refuted its expectation is kept as a guard: its line (and so the instructor
    page, which reads the lines) says it was written after the run; a false one still fails."""
    from mclfir_lite.lab.claims import AFTER, parse_checked, when_written
    assert claim("the bound is short of converged", True, "0.86 -> 0.88", written="after")
    line = capsys.readouterr().out.strip()
    assert line.startswith("✓ " + AFTER) and parse_checked(line) == (AFTER + "the bound is short of converged", "0.86 -> 0.88")
    assert when_written(parse_checked(line)[0]) == ("the bound is short of converged", "after")
    assert when_written("joint is an upper bound") == ("joint is an upper bound", "before")
    with pytest.raises(ClaimError):
        claim("the bound is short of converged", False, written="after")
    with pytest.raises(ValueError, match="before"):
        claim("x", True, written="later")
