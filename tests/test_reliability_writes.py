"""Reliability, round 3 (issue 25): nothing written through a symlink, results.json records
what ran and is always valid JSON, options that would be ignored are refused, empty and
odd environment values, user errors as one line, a second command on the same --out."""
import dataclasses
import errno
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mclfir_lite import settings
from mclfir_lite import files
from mclfir_lite.training import checkpoint
from mclfir_lite.cli import main as cli
from mclfir_lite.files import UnsafeFileError
from mclfir_lite.training.checkpoint import CheckpointError
from mclfir_lite.cli.main import main
from mclfir_lite.config import Config

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")
TINY = ["--quick", "--n-images", "240", "--steps", "2", "--image-size", "16", "--no-progress"]
VICTIM = b"precious bytes that are not ours\n"


def _no_data(monkeypatch):
    monkeypatch.setattr("mclfir_lite.cli.main.load_dataset", lambda *a, **k: pytest.fail("data loaded"))


def _one_line(capsys, *parts):
    err = capsys.readouterr().err
    lines = [l for l in err.strip().splitlines() if "Warning" not in l and not l.startswith("  ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for p in parts:
        assert p in err, (p, err)
    return err


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM)
    return path


# ---------------------------------------------------------------------------- no write through a link

@pytest.mark.parametrize("name", [".lock", "results.json", "forgetting.png", "checkpoints/finetune.pt"])
def test_a_symlink_planted_in_out_is_refused_and_its_target_untouched(tmp_path, victim, capsys, monkeypatch, name):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / name).symlink_to(victim)
    _no_data(monkeypatch)
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out)]) == 2
    _one_line(capsys, str(out / name), "symbolic link")
    assert victim.read_bytes() == VICTIM and (out / name).is_symlink()


def test_the_lock_never_writes_through_a_link(tmp_path, victim):
    (tmp_path / ".lock").symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        with files.lock_folder(tmp_path):
            pass
    assert victim.read_bytes() == VICTIM
    (tmp_path / ".lock").unlink()
    os.mkfifo(tmp_path / ".lock")   # not a regular file either
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        with files.lock_folder(tmp_path):
            pass


def test_the_write_probe_never_truncates_a_planted_link(tmp_path, victim):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / f".write-probe-{os.getpid()}").symlink_to(victim)   # the old, predictable name
    cli._check_writable(folder, "--out")
    assert victim.read_bytes() == VICTIM
    assert sorted(p.name for p in folder.iterdir()) == [f".write-probe-{os.getpid()}"]  # the probe is gone


def test_atomic_write_never_follows_a_link_at_its_temp_name(tmp_path, victim, monkeypatch):
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "deadbeef")
    target = tmp_path / "x.json"
    (tmp_path / f".x.json.{os.getpid()}.deadbeef.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        files.atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert victim.read_bytes() == VICTIM and not target.exists()


def test_atomic_write_refuses_to_replace_a_symlink(tmp_path, victim):
    link = tmp_path / "results.json"
    link.symlink_to(victim)
    with pytest.raises(UnsafeFileError, match=f"{link} is a symbolic link"):
        checkpoint.save(link, {"x": 1})
    assert link.is_symlink() and victim.read_bytes() == VICTIM


# ---------------------------------------------------------------------------- results record what ran

@pytest.mark.parametrize("args, message", [
    (["--recipe", "paper", "--encoder", "smallcnn"], "--encoder smallcnn conflicts with --recipe paper, which runs "
                                                     "resnet50_layer3"),
    (["--recipe", "paper", "--loss", "triplet"], "--loss triplet conflicts with --recipe paper, whose loss is ntxent"),
    (["--loss", "triplet", "--strategies", "released"], "--loss triplet does not apply to released"),
    (["--loss", "infonce", "--strategies", "finetune", "released"], "does not apply to released"),
    (["--dataset", "fashion-product-images", "--data-dir", "/nonexistent", "--domain-shift"],
     "--domain-shift applies to synthfashion only"),
    (["--strategies", "finetune", "--joint-steps", "5"], "--joint-steps applies to joint only"),
    (["--strategies", "finetune", "lwf", "--joint-lr", "0.002"], "--joint-lr applies to joint and retrain only"),
    (["--joint-lr", "0"], "--joint-lr must be a positive number, got 0.0"),
    (["--joint-lr", "nan"], "--joint-lr must be a positive number, got nan"),
    (["--strategies", "finetune", "lwf", "--ema-every", "2"], "--ema-every applies to mclfir only"),
    (["--strategies", "finetune", "--ema-decay", "0.9"], "--ema-decay applies to mclfir only"),
    (["--recipe", "paper", "--ema-decay", "0.9"], "--ema-decay applies to mclfir only"),
    (["--seed", "18446744073709552"], "--seed must be in 0..4294967295"),
    (["--seed", str(2**32)], "--seed must be in 0..4294967295"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, capsys, monkeypatch, args, message):
    _no_data(monkeypatch)
    assert main(["demo", "--quick", "--no-progress", "--out", str(tmp_path / "run"), *args]) == 2
    _one_line(capsys, message)


@pytest.mark.parametrize("args", [
    ["--joint-steps", "5"], ["--strategies", "mclfir", "--ema-every", "2", "--ema-decay", "0.9"],
    ["--joint-lr", "0.002"], ["--strategies", "retrain", "--joint-lr", "0.002"],
    ["--recipe", "paper", "--encoder", "resnet50_layer3", "--loss", "ntxent"],
    ["--strategies", "released", "--loss", "ntxent"], ["--pools", "shared", "--domain-shift"],
    ["--seed", str(2**32 - 1)],
])
def test_options_that_apply_are_accepted(tmp_path, args):
    cli.validate_demo_args(cli.build_parser().parse_args(["demo", "--out", str(tmp_path / "run"), *args]))


def test_results_name_the_recipes_encoder_and_its_random_weights():
    class Stand:  # what ResNet50Layer3 is without torchvision's weights in the hub cache
        description, fallback = "resnet50_layer3 (random init)", None
    enc = cli.encoder_used("resnet50_layer3 (--recipe paper)", Stand())
    assert enc["asked"] == "resnet50_layer3 (--recipe paper)" and enc["used"] == "resnet50_layer3 (random init)"
    assert "random weights" in enc["why"] and "hub cache" in enc["why"]


def test_the_recipes_encoder_is_what_results_record(tmp_path, monkeypatch):
    """--recipe paper with no --encoder: results.json says the recipe chose resnet50_layer3,
    not "smallcnn as asked" (a smallcnn stands in for the ResNet here, to stay quick)."""
    from mclfir_lite.core import encoders
    real = encoders.build_encoder
    asked = []

    def fake(name, **kw):
        asked.append(name)
        enc = real("smallcnn", width=8)
        enc.description = "resnet50_layer3 (random init)"
        return enc
    monkeypatch.setattr("mclfir_lite.training.runner.build_encoder", fake)
    out = tmp_path / "run"
    assert main(["demo", *TINY, "--recipe", "paper", "--steps", "1", "--increments", "colour", "--out", str(out)]) == 0
    rep = json.loads((out / "results.json").read_text())
    assert set(asked) == {"resnet50_layer3"} and rep["config"]["loss"] == "ntxent"
    assert rep["encoder"]["asked"] == "resnet50_layer3 (--recipe paper)"
    assert rep["encoder"]["used"] == "resnet50_layer3 (random init)" and "random weights" in rep["encoder"]["why"]


# ---------------------------------------------------------------------------- valid JSON, checked checkpoints

def test_results_json_is_valid_even_with_nan(tmp_path):
    path = tmp_path / "results.json"
    cli._write_json(path, {"strategies": {"finetune": {"final_map": {"colour": float("nan")}, "x": np.float32(np.inf)}}})
    rep = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in results.json"))
    assert rep["strategies"]["finetune"]["final_map"]["colour"] is None
    assert rep["strategies"]["finetune"]["x"] is None
    assert any("strategies.finetune.final_map.colour was nan" in n for n in rep["notes"])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-strategy demo folder (copied by each test that edits it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("MCLFIR_CACHE", str(out.parent / "cache"))
    try:
        assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out)]) == 0
    finally:
        mp.undo()
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("edit, field", [
    (lambda s: s.update(history=s["history"][:2]), "history"),
    (lambda s: s.pop("history"), "history"),
    (lambda s: s.update(done=99), "done"),
    (lambda s: s.update(done="3"), "done"),
    (lambda s: s.update(costs={}), "costs"),
    (lambda s: s.update(attributes=["nope"]), "attributes"),
    (lambda s: s.update(model={"x": torch.ones(1)}), "model"),
])
def test_a_cut_or_hand_edited_checkpoint_is_named(finished, tmp_path, capsys, edit, field):
    out = _copy(finished, tmp_path / "run")
    path = out / "checkpoints" / "finetune.pt"
    payload = torch.load(path, weights_only=True)
    state = checkpoint._from_safe(payload["state"])
    edit(state)
    checkpoint.save(path, state, payload["fingerprint"])
    before = (out / "results.json").read_bytes()
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out)]) == 2
    _one_line(capsys, f"checkpoint {path}", repr(field) if field != "done" else "'done'")
    assert (out / "results.json").read_bytes() == before
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out), "--fresh"]) == 0


# ---------------------------------------------------------------------------- empty strings, environment

def test_empty_out_is_refused(capsys, monkeypatch):
    _no_data(monkeypatch)
    assert main(["demo", *TINY, "--out", ""]) == 2
    _one_line(capsys, "--out is empty")
    assert main(["demo", *TINY, "--data-dir", "", "--dataset", "table"]) == 2
    _one_line(capsys, "--data-dir is empty")


def test_empty_cache_variable_means_the_default_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MCLFIR_CACHE", "")
    monkeypatch.chdir(tmp_path)
    settings._warned.clear()
    with pytest.warns(UserWarning, match="MCLFIR_CACHE is set but empty"):
        path = settings.cache_dir()
    assert path == tmp_path / "home" / ".cache" / "mclfir_lite" and path.is_dir()


def test_cache_variable_naming_a_file_is_an_error_naming_it(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "cachefile"
    a_file.write_text("x")
    for value in (a_file, a_file / "sub"):
        monkeypatch.setenv("MCLFIR_CACHE", str(value))
        with pytest.raises(OSError, match="MCLFIR_CACHE"):
            settings.cache_dir()
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(tmp_path / "run")]) == 2
    _one_line(capsys, "MCLFIR_CACHE", str(a_file))
    assert a_file.read_text() == "x"


def test_an_unknown_quick_value_warns(monkeypatch):
    settings._warned.clear()
    monkeypatch.setenv("MCLFIR_QUICK", "banana")
    with pytest.warns(UserWarning, match=r"MCLFIR_QUICK='banana' is not understood.*on: 1, true, yes, on"):
        assert settings.quick_mode() is False
    for value, on in (("1", True), ("off", False), ("", False), (" Yes ", True)):
        monkeypatch.setenv("MCLFIR_QUICK", value)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert settings.quick_mode() is on


# ---------------------------------------------------------------------------- tracebacks -> one line

def test_no_space_left_is_one_line_with_the_path(tmp_path, capsys, monkeypatch):
    def full(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as info:
        checkpoint.save(tmp_path / "c.pt", {"x": 1})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []   # no temp file left behind
    out = tmp_path / "run"
    assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out)]) == 2
    _one_line(capsys, "no space left on device", str(out / "checkpoints" / "finetune.pt"))


def test_a_bare_write_error_names_the_file(tmp_path):
    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError, match="no space left on device") as info:
        files.atomic_write(tmp_path / "results.json", full)
    assert info.value.filename == str(tmp_path / "results.json")


@pytest.mark.parametrize("field, value", [
    ("temperature", 0), ("temperature", float("nan")), ("lr", 0.0), ("lr", -1e-3), ("batch_size", 0),
    ("steps_per_attribute", 2.5), ("ema_decay", 1.5), ("ema_every", 0), ("weight_decay", -1.0),
    ("seed", 2**32), ("seed", -1), ("margin", -0.1), ("ewc_lambda", float("inf")), ("flip", "yes"),
    ("head", "mlp"), ("encoder", ""),
])
def test_config_fields_are_checked_before_any_training(field, value):
    with pytest.raises(ValueError, match=field):
        Config(**{field: value})
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(Config(), **{field: value})


def test_lab_run_with_a_bad_value_fails_before_training(tmp_path, monkeypatch):
    from mclfir_lite.training.runner import ContinualRunner
    from mclfir_lite.data.datasets import synthfashion_table
    from mclfir_lite.lab.lab import Lab
    table = synthfashion_table(n=240, size=16, seed=0)
    lab = Lab.from_table(table, [["colour"]], Config(steps_per_attribute=2, batch_size=16, encoder_width=8,
                                                      embed_dim=16), True, 16)
    lab.runs_dir = tmp_path / "runs"
    monkeypatch.setattr(ContinualRunner, "train_increment", lambda *a: pytest.fail("trained"))
    with pytest.raises(ValueError, match="config.temperature must be a finite number > 0, got 0"):
        lab.run("finetune", progress=False, temperature=0)


def test_a_widget_given_a_never_run_runner_says_run_it_first(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    pytest.importorskip("ipywidgets")
    from mclfir_lite.data.datasets import synthfashion_table
    from mclfir_lite.lab.lab import Lab
    from mclfir_lite.lab.views import forgetting_view
    from mclfir_lite.lab.widgets import ForgettingCurves
    table = synthfashion_table(n=240, size=16, seed=0)
    lab = Lab.from_table(table, [["colour"], ["pattern"]], Config(steps_per_attribute=2, batch_size=16,
                                                                  encoder_width=8, embed_dim=16), True, 16)
    runner = lab.runner("finetune", cache=False, progress=False)
    with pytest.raises(ValueError, match="no finished increment yet.*run it first"):
        ForgettingCurves({"finetune": runner.result()})
    with pytest.raises(ValueError, match="is a runner, not its result: run it first"):
        ForgettingCurves({"finetune": runner})
    with pytest.raises(ValueError, match="run it first"):
        forgetting_view({"finetune": runner.result()}, None, ["finetune"])


# ---------------------------------------------------------------------------- results.json in --out

def test_a_second_command_adds_its_strategies_to_results(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    first = json.loads((out / "results.json").read_text())
    assert main(["demo", *TINY, "--strategies", "frozen", "--out", str(out)]) == 0
    both = json.loads((out / "results.json").read_text())
    assert list(both["strategies"]) == ["finetune", "frozen"]
    assert both["strategies"]["finetune"] == first["strategies"]["finetune"]
    assert len(both["commands"]) == 2 and both["run"] == first["run"]
    # another run (another seed) on the same --out: refused, naming what differs; nothing changes
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["demo", *TINY, "--strategies", "finetune", "--seed", "1", "--out", str(out)]) == 2
    _one_line(capsys, "its results.json was made with a different configuration", "seed: 0 -> 1", "use another --out")
    assert (out / "results.json").read_bytes() == before


@pytest.mark.parametrize("content", [
    b'{"accuracy": 0.9}', b"not json at all", b"[1, 2]",
    # crossmodal's and composed's (their checkpoints share the demo's names: --fresh must not delete them)
    b'{"command": "python -m mclfir_lite crossmodal", "compatibility_strategy": "finetune", "strategies": {}}',
    b'{"made_by": "composed", "command": "python -m mclfir_lite composed", "strategies": {}}'])
def test_someone_elses_results_json_is_never_overwritten(tmp_path, capsys, monkeypatch, content):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "results.json").write_bytes(content)
    (out / "checkpoints" / "finetune.pt").write_bytes(b"theirs")
    _no_data(monkeypatch)
    for extra in ([], ["--fresh"]):
        assert main(["demo", *TINY, "--strategies", "finetune", "--out", str(out), *extra]) == 2
        _one_line(capsys, "results.json that the demo (mclfir_lite) did not write", "never overwritten")
    assert (out / "results.json").read_bytes() == content
    assert (out / "checkpoints" / "finetune.pt").read_bytes() == b"theirs"


# ---------------------------------------------------------------------------- caches, downloads, probes: no write through a link
# (every write under the cache or an output folder; each test plants a link and checks its target is unchanged)

def _predictable_temp_names(monkeypatch):
    """Make the random part of temp names known, so that a test can plant a link at one."""
    import secrets
    monkeypatch.setattr(secrets, "token_hex", lambda n=8: "deadbeef")


def test_render_cache_never_writes_through_a_link(tmp_path, victim, monkeypatch):
    from mclfir_lite.data import datasets
    datasets._rendered(8, 16, 0, None)
    (path,) = (settings.cache_dir() / "synthfashion").glob("*.npz")
    path.unlink()
    path.symlink_to(victim)    # a link planted at the cache's name: damaged for the reader, refused for the writer
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        datasets._rendered(8, 16, 0, None)
    assert victim.read_bytes() == VICTIM and path.is_symlink()
    path.unlink()
    _predictable_temp_names(monkeypatch)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.deadbeef.tmp")
    tmp.symlink_to(victim)     # and one at its temp name
    with pytest.raises(FileExistsError):
        datasets._rendered(8, 16, 0, None, rebuild=True)
    assert victim.read_bytes() == VICTIM and tmp.is_symlink() and not path.exists()


def test_image_cache_build_never_writes_through_a_link(tmp_path, victim, monkeypatch):
    from mclfir_lite.data import imagedata
    from mclfir_lite.data.table import image_cache_problem, read_table
    table = read_table(imagedata.write_jpeg_table(tmp_path / "t", 12, size=16, pool=4))
    path = tmp_path / "c.npy"
    old = tmp_path / "c.tmp.npy"      # the fixed temp name build_cache used before
    old.symlink_to(victim)
    _predictable_temp_names(monkeypatch)
    new = tmp_path / f".c.npy.{os.getpid()}.deadbeef.tmp"
    new.symlink_to(victim)
    with pytest.raises(FileExistsError):
        imagedata.build_cache(table, 16, path=path)
    assert victim.read_bytes() == VICTIM and not path.exists() and new.is_symlink()
    new.unlink()
    assert imagedata.build_cache(table, 16, path=path) == path and image_cache_problem(path, (12, 3, 16, 16)) is None
    assert victim.read_bytes() == VICTIM and old.is_symlink()
    path.unlink()
    path.symlink_to(victim)          # a link at the cache's name: refused, not replaced or written through
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        imagedata.build_cache(table, 16, path=path)
    assert victim.read_bytes() == VICTIM and path.is_symlink()


def test_jpeg_table_never_writes_through_a_link(tmp_path, victim):
    from mclfir_lite.data import imagedata
    (tmp_path / "t" / "images").mkdir(parents=True)
    (tmp_path / "t" / "images" / "0000001.jpg").symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        imagedata.write_jpeg_table(tmp_path / "t", 4, size=16, pool=2)
    assert victim.read_bytes() == VICTIM


def test_download_never_writes_through_a_link(tmp_path, victim, monkeypatch):
    from mclfir_lite.data import realutils
    src = tmp_path / "file.bin"
    src.write_bytes(b"payload")
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "x.bin.part").symlink_to(victim)      # the fixed temp name download used before
    _predictable_temp_names(monkeypatch)
    (dl / f".x.bin.{os.getpid()}.deadbeef.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        realutils.download(src.as_uri(), dl / "x.bin", progress=False)
    (dl / f".x.bin.{os.getpid()}.deadbeef.tmp").unlink()
    assert realutils.download(src.as_uri(), dl / "x.bin", progress=False).read_bytes() == b"payload"
    assert victim.read_bytes() == VICTIM and (dl / "x.bin.part").is_symlink()
    gone = tmp_path / "would-be-created"
    (dl / "y.bin").symlink_to(gone)             # a dangling link at the destination
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        realutils.download(src.as_uri(), dl / "y.bin", progress=False)
    assert not gone.exists()


def test_unpacking_never_writes_through_a_link(tmp_path, victim):
    import hashlib
    import zipfile
    from mclfir_lite.data import realdata
    archive = tmp_path / "fpi.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("myntradataset/styles.csv", "id,gender\n1,Men\n")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    dest = tmp_path / "dl"
    target = dest / "fashion-product-images-small"
    (target / "myntradataset").mkdir(parents=True)
    (target / "myntradataset" / "styles.csv").symlink_to(victim)   # a member's name
    with pytest.raises(ValueError, match="outside"):   # it resolves outside the target: refused before any write
        realdata.fetch_fashion_product_images(archive.as_uri(), sha, dest=dest)
    assert victim.read_bytes() == VICTIM
    (target / "myntradataset" / "styles.csv").unlink()
    gone = tmp_path / "would-be-created"
    (target / ".unpacked").symlink_to(gone)                         # the marker's name
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        realdata.fetch_fashion_product_images(archive.as_uri(), sha, dest=dest)
    assert not gone.exists()
    (target / ".unpacked").unlink()
    assert realdata.fetch_fashion_product_images(archive.as_uri(), sha, dest=dest) == target / "myntradataset"
    assert (target / ".unpacked").read_text() == sha


def test_safe_extract_is_public_and_refuses_a_member_outside(tmp_path):
    import zipfile
    from mclfir_lite.data.realutils import safe_extract
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("ok.txt", "x")
        z.writestr("../evil.txt", "x")
    with pytest.raises(ValueError, match="outside"):
        safe_extract(tmp_path / "evil.zip", tmp_path / "unz")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "unz" / "ok.txt").exists()


def test_doctor_write_probe_never_truncates_a_planted_link(tmp_path, victim):
    from mclfir_lite.cli import doctor
    cache = settings.cache_dir()
    (cache / ".doctor-write-test").symlink_to(victim)    # the old, fixed name
    assert doctor.check_cache(min_free_gib=0).ok
    assert victim.read_bytes() == VICTIM
    assert sorted(p.name for p in cache.iterdir()) == [".doctor-write-test"]   # the probe is gone


@pytest.mark.parametrize("writer", ["write_table", "features", "image cache", "prepared report"])
def test_other_cache_writes_refuse_a_link_at_their_name(tmp_path, victim, writer):
    from mclfir_lite.data import table as data
    from mclfir_lite.data import imagedata
    table = data.read_table(imagedata.write_jpeg_table(tmp_path / "t", 8, size=16, pool=2))
    if writer == "write_table":
        link = tmp_path / "copy.csv"
        link.symlink_to(victim)
        call = lambda: data.write_table(table, link)
    elif writer == "features":
        from mclfir_lite.retrieval import features
        from mclfir_lite.core.encoders import build_encoder
        enc, images = build_encoder("smallcnn", width=8), torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
        link = features.feature_path(features.feature_key(enc, images))
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(victim)
        call = lambda: features.encode_dataset(enc, images, progress=False)
    elif writer == "image cache":
        link = data.image_cache_path(table, 16)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(victim)
        call = lambda: data.load_images(table, 16)
    else:
        from mclfir_lite.data import realutils
        link = tmp_path / "prep" / "report.json"
        link.parent.mkdir()
        link.symlink_to(victim)
        call = lambda: realutils.write_report(realutils.PrepareReport("x", "y"), link.parent)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        call()
    assert victim.read_bytes() == VICTIM and link.is_symlink()


def test_joint_lr_reaches_the_run_that_uses_it(tmp_path, monkeypatch):
    """--joint-lr is joint's (and retrain's) learning rate in the run's config, and the other
    strategies keep the shared one."""
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["demo", "--quick", "--no-progress", "--steps", "2", "--joint-steps", "2", "--strategies", "joint",
                 "--joint-lr", "0.003", "--out", str(out)]) == 0
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["joint_lr"] == 0.003 and config["lr"] == Config().lr


@pytest.mark.parametrize("encoder, expected", [(None, "preset"), ("smallcnn", "preset"),
                                               ("efficientnet_lite0", "pretrained"),
                                               ("open_clip:ViT-B-32:openai", "pretrained")])
def test_a_pretrained_encoder_trains_joint_at_the_continual_rate(tmp_path, encoder, expected):
    """joint's own rate (4e-3) was tuned for a smallcnn trained from scratch; a pretrained
    encoder, in part or whole, trains joint at the overlay's rate."""
    from mclfir_lite.config import PRESETS, PRETRAINED
    args = cli.build_parser().parse_args(["demo", "--out", str(tmp_path / "run"),
                                          *(["--encoder", encoder] if encoder else [])])
    rate = cli.demo_preset(args, quick=False)["joint_lr"]
    assert rate == (PRESETS["default"]["joint_lr"] if expected == "preset" else PRETRAINED["default"]["joint_lr"])


def test_a_shown_path_names_no_home_folder(tmp_path, monkeypatch):
    from pathlib import Path
    from mclfir_lite.files import shown
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert shown(tmp_path / "work" / "runs" / "results.json") == str(Path("runs") / "results.json")   # under the working folder
    assert shown(tmp_path / "home" / ".cache" / "x.json") == str(Path("~") / ".cache" / "x.json")  # under home
    assert shown("/elsewhere/x.json") == "/elsewhere/x.json"
