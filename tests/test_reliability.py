"""Reliability: checkpoints that cannot run code, fingerprints that notice every change,
locked output folders, and every bad demo argument rejected before any data is loaded
(issue 12; docs/robustness.md lists the cases)."""
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mclfir_lite import files
from mclfir_lite.training import checkpoint
from mclfir_lite.files import FolderLockedError
from mclfir_lite.training.checkpoint import CheckpointError
from mclfir_lite.cli.main import main

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--quick", "--n-images", "240", "--steps", "2", "--image-size", "16", "--no-progress"]


class Payload:
    """Unpickling this object writes a marker file: what a planted checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


# ---------------------------------------------------------------------------- save / load

def test_round_trip_of_plain_data_tensors_and_numpy(tmp_path):
    state = {"ints": np.arange(6, dtype=np.int64).reshape(2, 3), "mask": np.array([True, False]),
             "names": np.array(["train", "test"], dtype=object), "u": np.array(["ab", "c"]),
             "t": torch.randn(3), "nested": [{"a": (1, 2.5, None, "x")}, np.float32(1.5)], 7: "int key"}
    path = checkpoint.save(tmp_path / "c.pt", state, checkpoint.fingerprint({"k": 1}))
    back = checkpoint.load(path, checkpoint.fingerprint({"k": 1}))
    assert isinstance(back["ints"], np.ndarray) and back["ints"].dtype == np.int64
    assert np.array_equal(back["ints"], state["ints"]) and np.array_equal(back["mask"], state["mask"])
    assert back["names"].dtype == object and list(back["names"]) == ["train", "test"]
    assert back["u"].tolist() == ["ab", "c"] and torch.equal(back["t"], state["t"])
    assert back["nested"] == [{"a": (1, 2.5, None, "x")}, 1.5] and back[7] == "int key"
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_unsafe_objects_are_refused_when_saving(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['bad'\].*Payload"):
        checkpoint.save(tmp_path / "c.pt", {"bad": Payload(tmp_path / "m")})
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_planted_pickle_is_refused_and_never_runs(tmp_path, how):
    marker, path = tmp_path / "marker", tmp_path / "finetune.pt"
    if how == "torch.save":
        torch.save({"format": checkpoint.FORMAT, "state": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError, match=f"checkpoint {path} cannot be read safely"):
        checkpoint.load(path)
    assert not marker.exists()
    # the test can fail: an unsafe load of the same file does run the payload
    torch.load(path, weights_only=False) if how == "torch.save" else pickle.loads(path.read_bytes())
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("content, message", [
    (lambda p: torch.save([1, 2, 3], p), "not a mclfir_lite checkpoint (it holds list)"),
    (lambda p: torch.save({"model": torch.ones(2)}, p), "not a mclfir_lite checkpoint"),
    (lambda p: p.write_bytes(b"not a checkpoint at all"), "cannot be read safely"),
    (lambda p: p.write_bytes(b""), "cannot be read safely"),
    (lambda p: (checkpoint.save(p, {"x": torch.ones(1000)}), p.write_bytes(p.read_bytes()[:300])),
     "cannot be read safely"),
])
def test_foreign_damaged_and_empty_files_are_named(tmp_path, content, message):
    path = tmp_path / "ckpt.pt"
    content(path)
    with pytest.raises(CheckpointError, match=re.escape(message)) as err:
        checkpoint.load(path)
    assert str(path) in str(err.value)


def test_a_fingerprint_mismatch_names_the_fields(tmp_path):
    old = checkpoint.fingerprint({"image_size": "32x32", "lr": 0.001, "seed": 0})
    new = checkpoint.fingerprint({"image_size": "64x64", "lr": 0.001, "seed": 1})
    checkpoint.save(tmp_path / "c.pt", {"done": 1}, old)
    with pytest.raises(CheckpointError, match=r"differs in: image_size, seed; image_size: 32x32 -> 64x64"):
        checkpoint.load(tmp_path / "c.pt", new)
    assert checkpoint.differing_fields(old, new) == ["image_size", "seed"]


def test_temp_files_are_unique_per_process_and_call(tmp_path):
    names = []
    for _ in range(2):
        files.atomic_write(tmp_path / "x.pt", lambda tmp: (names.append(tmp.name), tmp.write_bytes(b"1")))
    assert names[0] != names[1] and all(str(os.getpid()) in n for n in names)
    with pytest.raises(ZeroDivisionError):  # a failed write leaves the old file and no temp file
        files.atomic_write(tmp_path / "x.pt", lambda tmp: (tmp.write_bytes(b"half"), 1 / 0))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"] and (tmp_path / "x.pt").read_bytes() == b"1"


# ---------------------------------------------------------------------------- fingerprints

def test_code_digest_ignores_docstrings_and_comments_but_not_code(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Doc."""\ndef f(x):\n    """Say."""\n    return x + 1\n')
    b.write_text('"""Other doc."""\n# a comment\ndef f(x):\n    return x + 1  # same code\n')
    c.write_text('def f(x):\n    return x + 2\n')
    assert files.source_digest(a) == files.source_digest(b) != files.source_digest(c)


def _tiny_protocol(table, **caps):
    from mclfir_lite.data.table import make_protocol
    return make_protocol(table, seed=0, **caps)


def test_run_fingerprint_covers_images_size_protocol_version_and_code(monkeypatch):
    from mclfir_lite.config import Config
    from mclfir_lite.data.table import load_images
    from mclfir_lite.data.datasets import synthfashion_table
    table = synthfashion_table(n=120, size=16, seed=0)
    images = load_images(table, 16)
    fp = lambda imgs=images, caps=None, cfg=Config(), **extra: checkpoint.run_fingerprint(
        cfg, "finetune", [["colour"]], imgs, table.labels, _tiny_protocol(table, **(caps or {})), extra)
    base = fp()
    assert checkpoint.differing_fields(base, fp(imgs=load_images(table, 12))) == ["image_size", "images"]
    flipped = images.clone()
    flipped[0, 0, 0, 0] ^= 1  # one bit of one pixel
    assert checkpoint.differing_fields(base, fp(imgs=flipped)) == ["images"]
    assert "protocol" in checkpoint.differing_fields(base, fp(caps={"max_queries": 3}))
    assert checkpoint.differing_fields(base, fp(cfg=Config(lr=0.1))) == ["lr"]
    assert fp(cfg=Config(device="cpu:0"))["hash"] == base["hash"]  # resume on another device
    from mclfir_lite import settings
    monkeypatch.setattr(settings, "__version__", "9.9")
    assert checkpoint.differing_fields(base, fp()) == ["version"]
    monkeypatch.setattr(files, "strategy_code_digest", lambda strategy: "changed")   # the code its strategy runs
    assert "code" in checkpoint.differing_fields(base, fp())


# ---------------------------------------------------------------------------- folder lock

HOLD = textwrap.dedent("""
    import sys, time
    from mclfir_lite.files import lock_folder
    with lock_folder(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


@pytest.fixture
def locked_by_other_process(tmp_path):
    folder = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield folder, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_process_on_the_same_folder_stops_at_once(locked_by_other_process):
    folder, proc = locked_by_other_process
    t0 = time.perf_counter()
    with pytest.raises(FolderLockedError, match=f"in use by another run \\(pid {proc.pid}\\)"):
        with files.lock_folder(folder):
            pass
    assert time.perf_counter() - t0 < 2
    proc.kill()
    proc.wait()  # the lock dies with its process: no stale lock
    with files.lock_folder(folder):
        assert (folder / ".lock").read_text() == str(os.getpid())


def test_demo_on_a_folder_in_use_names_the_running_pid(locked_by_other_process, capsys, monkeypatch):
    folder, proc = locked_by_other_process
    monkeypatch.setattr("mclfir_lite.cli.main.load_dataset", lambda *a, **k: pytest.fail("data loaded"))
    assert main(["demo", *TINY, "--out", str(folder)]) == 2
    assert f"pid {proc.pid}" in capsys.readouterr().err


# ---------------------------------------------------------------------------- demo arguments

@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps must be a positive integer, got 0"),
    (["--steps", "-3"], "--steps must be a positive integer, got -3"),
    (["--image-size", "0"], "--image-size must be a positive integer, got 0"),
    (["--n-images", "0"], "--n-images must be a positive integer, got 0"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--increments", ""], "--increments '' is empty"),
    (["--increments", " ; "], "is empty"),
    (["--strategies", "finetune", "finetune"], "more than once"),
    (["--data-dir", "/tmp"], "--data-dir does not apply to synthfashion"),
    (["--strict"], "--strict does not apply to synthfashion"),
    (["--device", "tpu"], "--device 'tpu' is not a device torch knows"),
    (["--encoder", "resnet"], "--encoder 'resnet'"),
    (["--dataset", "fashionai", "--n-images", "10"], "--n-images applies to synthfashion only"),
])
def test_bad_demo_arguments_are_refused_before_any_data_loads(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setattr("mclfir_lite.cli.main.load_dataset", lambda *a, **k: pytest.fail("data loaded"))
    base = ["demo", "--quick", "--no-progress", "--out", str(tmp_path / "run")]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_out_that_is_a_file_or_not_writable_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("mclfir_lite.cli.main.load_dataset", lambda *a, **k: pytest.fail("data loaded"))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out in (a_file, a_file / "sub"):
        assert main(["demo", *TINY, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert str(a_file) in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoints").write_text("a file where the checkpoints go")
    assert main(["demo", *TINY, "--out", str(tmp_path / "run")]) == 2
    assert "checkpoints" in capsys.readouterr().err
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("no /sys here to try a folder nobody may create")
    assert main(["demo", *TINY, "--out", "/sys/mclfir-lite-test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "/sys/mclfir-lite-test" in err and len(err.strip().splitlines()) == 1


def test_zero_is_not_a_default_and_results_record_what_ran(tmp_path):
    out = tmp_path / "run"
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out)]) == 0
    rep = json.loads((out / "results.json").read_text())
    assert rep["image_size"] == 16 and rep["config"]["steps_per_attribute"] == 2
    assert rep["protocol"] == {"max_queries": 300, "max_candidates": 1000, "query_fraction": 0.25}
    assert rep["encoder"] == {"asked": "smallcnn", "used": "smallcnn (width 16, trained from scratch)",
                              "why": "as asked"}


def test_results_name_the_encoder_that_ran_after_a_fallback(tmp_path, monkeypatch):
    from mclfir_lite.core import encoders
    real_build = encoders.build_encoder

    def fake(name, **kw):  # what build_encoder does when open_clip has no weights, without timm's cost
        enc = real_build("smallcnn", width=kw.get("width", 32))
        enc.description, enc.fallback = "efficientnet_lite0 (stand-in)", "open_clip weights 'x' not found: EfficientNet-Lite0 used"
        return enc
    monkeypatch.setattr("mclfir_lite.training.runner.build_encoder", fake)
    out = tmp_path / "run"
    asked = "open_clip:ViT-B-32:laion400m_e31"    # a model and tag open_clip knows, weights not on disk
    assert main(["demo", *TINY, "--strategies", "finetune", "--encoder", asked, "--out", str(out)]) == 0
    enc = json.loads((out / "results.json").read_text())["encoder"]
    assert enc["asked"] == asked and enc["used"] == "efficientnet_lite0 (stand-in)"
    assert "EfficientNet-Lite0 used" in enc["why"]


@pytest.mark.parametrize("encoder, message", [
    ("open_clip:NoSuchModel:openai", "open_clip has no model 'NoSuchModel'"),
    ("open_clip:ViT-B-3:openai", "did you mean ViT-B-32"),
    ("open_clip:ViT-B-32:no_such_tag", "has no pretrained tag 'no_such_tag'; its tags: openai"),
    ("open_clip:ViT-B-32:", "no weights named after the model"),
    ("open_clip:ViT-B-32:/no/such/weights.pt", "checkpoint file '/no/such/weights.pt' not found"),
])
def test_an_open_clip_typo_is_named_not_taken_for_missing_weights(tmp_path, capsys, monkeypatch, encoder, message):
    """Before, each fell back to EfficientNet-Lite0 with a warning that blamed the network, and
    trained it (minutes); an empty tag trained a random tower."""
    pytest.importorskip("open_clip")

    def never(*a, **k):
        raise AssertionError("an encoder was built: the typo was not caught first")
    monkeypatch.setattr("mclfir_lite.training.runner.build_encoder", never)   # the name the runner calls
    assert main(["demo", *TINY, "--strategies", "finetune", "--encoder", encoder, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_open_clip_spellings_it_accepts_are_accepted(tmp_path):
    """open_clip reads a tag case-blind with '-' as '_', and loads any file it is given."""
    pytest.importorskip("open_clip")
    from mclfir_lite.retrieval.zeroshot import open_clip_problem
    weights = tmp_path / "weights.ckpt"
    weights.write_bytes(b"")
    assert open_clip_problem("ViT-B-32", "laion2b-s34b-b79k") is None and open_clip_problem("ViT-B-32", "OpenAI") is None
    assert open_clip_problem("ViT-B-32", str(weights)) is None


def test_build_encoder_says_why_it_fell_back():
    pytest.importorskip("open_clip")
    from mclfir_lite.core.encoders import build_encoder
    with pytest.warns(UserWarning, match="unavailable"):
        enc = build_encoder("open_clip:no-such-model:none", trainable=False)
    assert enc.description.startswith("efficientnet_lite0") and "EfficientNet-Lite0 used" in enc.fallback
    assert build_encoder("smallcnn").fallback is None


def test_ctrl_c_prints_one_line_with_what_finished(tmp_path, capsys, monkeypatch):
    from mclfir_lite.training.runner import ContinualRunner
    real = ContinualRunner.train_increment

    def interrupted(self, i):
        if self.strategy == "mclfir" and i == 1:
            raise KeyboardInterrupt
        return real(self, i)
    monkeypatch.setattr(ContinualRunner, "train_increment", interrupted)
    args = ["demo", *TINY, "--strategies", "finetune", "mclfir", "--out", str(tmp_path / "run")]
    assert main(args) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "finished finetune (all increments), mclfir (1/3 increments checkpointed)" in err
    assert "run the same command again to resume" in err
    trained = []

    def counted(self, i):
        trained.append((self.strategy, i))
        return real(self, i)
    monkeypatch.setattr(ContinualRunner, "train_increment", counted)
    assert main(args) == 0
    # and it does resume: finetune is finished and mclfir's first increment is checkpointed
    assert trained == [("mclfir", 1), ("mclfir", 2)], trained


# ---------------------------------------------------------------------------- checkpoints in the demo

def test_demo_refuses_a_planted_checkpoint_without_running_it(tmp_path, capsys):
    out, marker = tmp_path / "run", tmp_path / "marker"
    (out / "checkpoints").mkdir(parents=True)
    torch.save({"fingerprint": {}, "done": 0, "payload": Payload(marker)}, out / "checkpoints" / "finetune.pt")
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {out / 'checkpoints' / 'finetune.pt'}" in err and not marker.exists()
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out), "--fresh"]) == 0


def test_demo_refuses_a_checkpoint_of_another_image_size(tmp_path, capsys):
    base = ["demo", "--quick", "--n-images", "240", "--steps", "2", "--no-progress", "--strategies", "finetune",
            "--out", str(tmp_path / "run")]
    assert main([*base, "--image-size", "16"]) == 0
    assert main([*base, "--image-size", "20"]) == 2
    err = capsys.readouterr().err
    assert "image_size: 16x16 -> 20x20" in err


def test_notebook_cache_keys_include_the_protocol_caps(tmp_path):
    from mclfir_lite.config import Config
    from mclfir_lite.data.datasets import synthfashion_table
    from mclfir_lite.lab.lab import Lab
    table = synthfashion_table(n=240, size=16, seed=0)
    cfg = Config(steps_per_attribute=2, batch_size=16, encoder_width=8, embed_dim=16)
    labs = [Lab.from_table(table, [["colour"], ["pattern"]], cfg, True, 16, max_queries=q, max_candidates=c)
            for q, c in ((5, 20), (None, None))]
    for lab in labs:
        lab.runs_dir = tmp_path / "runs"
    capped = labs[0].run("finetune", progress=False).result()
    full = labs[1].run("finetune", progress=False).result()
    uncached = labs[1].run("finetune", cache=False, progress=False).result()
    assert full["map_matrix"] == uncached["map_matrix"] != capped["map_matrix"]
    assert labs[0].runner("finetune").checkpoint != labs[1].runner("finetune").checkpoint


def test_notebook_cache_recomputes_a_damaged_file(tmp_path):
    from mclfir_lite.config import Config
    from mclfir_lite.data.datasets import synthfashion_table
    from mclfir_lite.lab.lab import Lab
    table = synthfashion_table(n=240, size=16, seed=0)
    lab = Lab.from_table(table, [["colour"]], Config(steps_per_attribute=2, batch_size=16, encoder_width=8,
                                                      embed_dim=16), True, 16)
    lab.runs_dir = tmp_path / "runs"
    first = lab.run("finetune", progress=False).result()
    path = lab.runner("finetune").checkpoint
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="recomputing"):
        again = lab.run("finetune", progress=False).result()
    assert again["map_matrix"] == first["map_matrix"]


# ---------------------------------------------------------------------------- resume after SIGKILL

def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, monkeypatch):
    """Kill the demo at a few moments (seeded), resume each time: the same results.json
    numbers as a run that was never interrupted, and the last run (in this process, at one torch
    thread, to count what it trains) trains less than the whole plan: it read the checkpoints."""
    cmd = [sys.executable, "-m", "mclfir_lite", "demo", *TINY, "--steps", "6", "--strategies", "mclfir", "replay"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run([*cmd, "--out", str(ref)], env=env, check=True, capture_output=True)
    rng, interrupted = np.random.default_rng(0), 0
    for delay in rng.uniform(0.0, 3.0, 2):
        proc = subprocess.Popen([*cmd, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        t0 = time.perf_counter()  # kill a random moment after the first checkpoint (or the start)
        while proc.poll() is None and not list(killed.glob("checkpoints/*.pt")) and time.perf_counter() - t0 < 120:
            time.sleep(0.05)
        time.sleep(delay)
        interrupted += proc.poll() is None
        proc.kill()
        proc.wait()
    assert interrupted >= 1
    from mclfir_lite.training.runner import ContinualRunner
    trained, real, threads = [], ContinualRunner.train_increment, torch.get_num_threads()
    monkeypatch.setattr(ContinualRunner, "train_increment",
                        lambda self, i: trained.append((self.strategy, i)) or real(self, i))
    torch.set_num_threads(1)
    try:
        assert main([*cmd[3:], "--out", str(killed)]) == 0
    finally:
        torch.set_num_threads(threads)
    plan = json.loads((killed / "results.json").read_text())["increments"]
    assert len(trained) < 2 * len(plan), f"the resumed run trained {trained}: every increment again"
    a = json.loads((ref / "results.json").read_text())["strategies"]
    b = json.loads((killed / "results.json").read_text())["strategies"]
    for s in a:
        for key in ("map_matrix", "train_samples", "optimizer_steps"):
            assert a[s][key] == b[s][key], (s, key)
