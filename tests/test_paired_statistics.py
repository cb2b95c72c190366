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
    """The same seed gives the same interval; another seed another one (with ten varied pairs the
    2.5% and 97.5% quantiles are not the extreme differences, so the resamples show through)."""
    rng = np.random.default_rng(7)
    a, b = rng.uniform(0.4, 0.7, 10), rng.uniform(0.4, 0.7, 10)
    assert paired_difference(a, b) == paired_difference(a, b, seed=0)
    other = paired_difference(a, b, seed=1)
    assert (other["lo"], other["hi"]) != (paired_difference(a, b)["lo"], paired_difference(a, b)["hi"])
    assert other["mean"] == paired_difference(a, b)["mean"]   # the mean is not resampled


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


def test_t_interval_is_wider_than_a_three_pair_bootstrap():
    """Three seeds (notebook 09's composed-retrieval comparison): a percentile bootstrap can only
    span the three observed differences and calls -0.025, -0.020, -0.050 a decided gap; the t
    interval (the composed command's own +-0.040) calls it undecided."""
    a, b = [0.295, 0.280, 0.270], [0.320, 0.300, 0.320]
    boot, t = paired_difference(a, b, resolution=0.02), paired_difference(a, b, resolution=0.02, interval="t")
    assert t["mean"] == pytest.approx(-0.0317, abs=1e-4)
    assert (t["hi"] - t["lo"]) / 2 == pytest.approx(0.0398, abs=1e-3)
    assert t["lo"] < boot["lo"] and boot["hi"] < t["hi"]
    assert t["verdict"] == "undecided" and t["interval"] == "t"
    # a gap well beyond its noise is decided with t as well
    assert paired_difference([0.50, 0.52, 0.51], [0.40, 0.41, 0.40], resolution=0.02, interval="t")["verdict"] == "above"


@pytest.mark.parametrize("a, b, interval", [([0.5], [0.4], "t"), ([0.5, 0.6], [0.4, 0.5], "normal")])
def test_t_needs_two_pairs_and_the_interval_is_named(a, b, interval):
    with pytest.raises(ValueError, match="paired_difference"):
        paired_difference(a, b, interval=interval)
