"""Paired statistics for issue 20: a bootstrap CI of paired differences with a verdict at a
resolution, and MeanAP split into stability (kept) and plasticity (learnt)."""
import numpy as np
import pytest

from mclfir_lite.lab.report import paired_difference, plasticity, stability


def test_a_clear_gap_is_above_and_its_mirror_below():
    a, b = [0.50, 0.60, 0.55, 0.52, 0.58], [0.40, 0.45, 0.42, 0.41, 0.44]
    up, down = paired_difference(a, b), paired_difference(b, a)
    assert up["verdict"] == "above" and down["verdict"] == "below"
    assert up["lo"] > 0.01 and up["lo"] <= up["mean"] <= up["hi"]
    assert up["mean"] == pytest.approx(-down["mean"])


def test_pairing_cancels_a_shared_seed_effect():
    """Seeds differ by 0.1 but b is always 0.02 below a: paired, that is a decided gap."""
    base = np.array([0.3, 0.4, 0.5, 0.6, 0.7])
    d = paired_difference(base + 0.02, base)
    assert d["verdict"] == "above" and d["hi"] - d["lo"] < 1e-9


def test_equal_runs_are_no_difference_and_noisy_ones_undecided():
    a = [0.5, 0.6, 0.55, 0.52, 0.58]
    assert paired_difference(a, [x + 0.001 for x in a])["verdict"] == "no difference"
    assert paired_difference(a, [0.45, 0.65, 0.5, 0.6, 0.5])["verdict"] == "undecided"


@pytest.mark.parametrize("a, b", [([], []), ([0.1, 0.2], [0.1]), ([0.1, float("nan")], [0.1, 0.2])])
def test_bad_pairs_are_refused(a, b):
    with pytest.raises(ValueError, match="paired_difference"):
        paired_difference(a, b)


def test_it_is_seeded():
    a, b = [0.5, 0.6, 0.55], [0.45, 0.61, 0.5]
    assert paired_difference(a, b) == paired_difference(a, b)


RUN = {"increments": [["length"], ["pattern", "colour"], ["silhouette"]],
       "attributes": ["length", "pattern", "colour", "silhouette"],
       "map_matrix": [[0.9, None, None, None],
                      [0.5, 0.8, 0.7, None],
                      [0.4, 0.6, 0.65, 0.3]]}


def test_plasticity_is_the_diagonal_and_stability_the_old_final_map():
    assert plasticity(RUN) == pytest.approx(np.mean([0.9, 0.8, 0.7, 0.3]))
    assert stability(RUN) == pytest.approx(np.mean([0.4, 0.6, 0.65]))


def test_one_increment_has_no_stability():
    one = {"increments": [["length"]], "attributes": ["length"], "map_matrix": [[0.9]]}
    assert np.isnan(stability(one)) and plasticity(one) == pytest.approx(0.9)


def test_paired_measures_splits_meanap_and_leaves_out_a_missing_forgetting():
    from mclfir_lite.lab.report import paired_measures
    better = [dict(RUN, final_meanap=0.6 + k / 100, forgetting=0.01) for k in range(4)]
    worse = [dict(RUN, final_meanap=0.5 + k / 100, forgetting=None) for k in range(4)]
    row = paired_measures(better, worse)
    assert set(row) == {"meanap", "stability", "plasticity"}      # forgetting is None for one side
    assert row["meanap"]["verdict"] == "above" and row["stability"]["verdict"] == "no difference"
