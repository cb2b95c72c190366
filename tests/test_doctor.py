"""``python -m mclfir_lite doctor``: each check says what is missing and what to do; exit 1 only
when something required is missing. The benchmark test runs for about a second."""
import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from mclfir_lite.cli import main as cli
from mclfir_lite.cli import doctor

ROOT = Path(__file__).resolve().parents[1]


def _pretend_missing(monkeypatch, *missing):
    real = metadata.version

    def version(name):
        if name in missing:
            raise metadata.PackageNotFoundError(name)
        return real(name)
    monkeypatch.setattr(doctor.metadata, "version", version)


def test_report_exit_code_and_fix_lines():
    ok = doctor.Check("a", True, "fine")
    note = doctor.Check("b", False, "absent", "install b", required=False)
    fail = doctor.Check("c", False, "absent", "install c")
    text, code = doctor.report([ok, note])
    assert code == 0 and "READY" in text and "[note] b: absent" in text and "-> install b" in text
    text, code = doctor.report([ok, note, fail])
    assert code == 1 and "NOT READY: c" in text and "[FAIL] c: absent" in text and "-> install c" in text
    assert "->" not in ok.line()


def test_missing_required_package_fails_and_stops_before_torch(monkeypatch):
    _pretend_missing(monkeypatch, "torch", "playwright")
    monkeypatch.setattr(doctor, "check_threads", lambda: pytest.fail("must not import torch when it is missing"))
    checks = doctor.run_checks(benchmark=False)
    by_name = {c.name: c for c in checks}
    assert not by_name["torch"].ok and by_name["torch"].required and "pip install" in by_name["torch"].fix
    assert not by_name["playwright"].ok and not by_name["playwright"].required
    assert "browser test" in by_name["playwright"].detail
    assert doctor.report(checks)[1] == 1


def test_missing_optional_package_is_only_a_note(monkeypatch):
    _pretend_missing(monkeypatch, "nbmake")
    checks = doctor.check_packages()
    (nb,) = [c for c in checks if c.name == "nbmake"]
    assert not nb.ok and not nb.required and nb.line().startswith("[note]")
    assert doctor.report(checks)[1] == 0


def test_python_too_old(monkeypatch):
    assert doctor.check_python().ok
    monkeypatch.setattr(doctor, "MIN_PYTHON", (99, 0))
    c = doctor.check_python()
    assert not c.ok and "99.0" in c.fix


def test_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    c = doctor.check_cache()
    assert c.ok and str(tmp_path / "cache") in c.detail and "GiB free" in c.detail and "MCLFIR_CACHE" in c.detail
    assert not doctor.check_cache(min_free_gib=1e9).ok
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MCLFIR_CACHE", str(blocker))
    c = doctor.check_cache()
    assert not c.ok and "cannot write" in c.detail and "MCLFIR_CACHE" in c.fix


@pytest.mark.parametrize("found, word, ok", [(True, "found", True), (False, "not on disk", False),
                                             (None, "cannot tell", False)])
def test_clip_weights_messages(monkeypatch, found, word, ok):
    from mclfir_lite.core import encoders
    monkeypatch.setattr(encoders, "clip_weights_cached", lambda model, tag: found)
    c = doctor.check_clip_weights()
    assert c.ok is ok and word in c.detail and not c.required


def test_clip_weights_never_touch_the_network(monkeypatch):
    """Every attempt is recorded, not only raised: the check catches exceptions of its own, and
    would swallow an AssertionError raised here."""
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args[1:] or args)
        raise OSError("no network in this test")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    c = doctor.check_clip_weights()
    assert attempts == [], f"doctor tried the network: {attempts}"
    assert not c.required and c.detail


def test_gpu_and_threads_are_notes():
    assert not doctor.check_gpu().required and not doctor.check_threads().required


@pytest.mark.parametrize("speed, ok", [(1.0, True), (0.5, True), (0.25, False)])
def test_expected_series_time_scales_with_speed(monkeypatch, speed, ok):
    monkeypatch.setattr(doctor, "steps_per_second", lambda seconds: (speed * doctor.REF_STEPS_PER_SECOND, 100))
    c = doctor.check_benchmark(1.0)
    minutes = doctor.SERIES_SECONDS_REF / speed / 60      # half the speed, twice the time
    assert f"about {minutes:.0f} min here" in c.detail and c.ok is ok and not c.required


def test_benchmark_gets_what_is_left_of_the_budget(monkeypatch):
    seen = []
    monkeypatch.setattr(doctor, "check_benchmark", lambda s: seen.append(s) or doctor.Check("speed", True, ""))
    monkeypatch.setattr(doctor, "check_clip_weights", lambda: doctor.Check("clip weights", True, ""))
    monkeypatch.setattr(doctor, "TOTAL_SECONDS", 0.0)
    doctor.run_checks(benchmark=True, seconds=8.0)
    assert seen == [3.0]
    monkeypatch.setattr(doctor, "TOTAL_SECONDS", 1e6)
    doctor.run_checks(benchmark=True, seconds=8.0)
    assert seen[-1] == 8.0


def test_micro_benchmark_runs_the_training_loop(one_thread):
    rate, steps = doctor.steps_per_second(seconds=1.0, n_images=96)
    assert steps >= 2 and rate > 0


def test_cli_doctor_without_benchmark(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path))
    _pretend_missing(monkeypatch, "playwright")  # optional: still ready
    code = cli.main(["doctor", "--no-benchmark"])
    out = capsys.readouterr().out
    assert code == 0 and "READY" in out and "[note] playwright" in out and str(tmp_path) in out
    assert "speed" not in out


def test_python_m_doctor_runs_before_torch_is_imported(tmp_path):
    """`python -m mclfir_lite doctor` takes a path that does not import the main CLI (and torch)
    before the version checks: with torch hidden it reports it instead of crashing."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "torch.py").write_text("raise ImportError('torch hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(ROOT)]), "MCLFIR_CACHE": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "mclfir_lite", "doctor", "--no-benchmark"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "[FAIL] torch import: ImportError: torch hidden by the test" in r.stdout
    assert "NOT READY" in r.stdout and "Traceback" not in r.stderr


def test_busy_machine_is_named_in_the_speed_line(monkeypatch):
    monkeypatch.setattr(doctor, "steps_per_second", lambda seconds: (doctor.REF_STEPS_PER_SECOND, 100))
    monkeypatch.setattr(doctor.os, "getloadavg", lambda: (99.0, 99.0, 99.0), raising=False)
    assert "load average 99.0" in doctor.check_benchmark(1.0).detail
    monkeypatch.setattr(doctor.os, "getloadavg", lambda: (0.0, 0.0, 0.0), raising=False)
    assert "load average" not in doctor.check_benchmark(1.0).detail


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "ten"])
def test_bench_seconds_must_be_a_positive_number(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        doctor.cli(["--bench-seconds", value])
    assert exit_.value.code == 2 and "--bench-seconds" in capsys.readouterr().err
