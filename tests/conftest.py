"""Fixtures shared by several test modules (opt in with ``pytest.mark.usefixtures``; ``lenient_exercises``
applies to every test), and the skip policy: a skip is reported loudly, and fails the session in CI."""
import pytest
import torch


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point MCLFIR_CACHE at this test's temporary folder."""
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def lenient_exercises(monkeypatch):
    """Unit tests feed exercise checks wrong answers on purpose, to test the hints: in CI
    (CI=true) strict mode would turn those into ExerciseError. Strict mode itself is tested in
    tests/test_exercises.py, which sets MCLFIR_STRICT_EXERCISES where it needs it."""
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "0")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and much faster on a shared, busy CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# --- skips: loud everywhere, failures in CI unless allowed ------------------------------------
# A skipped test is a test that did not run, and an xfailed one did not pass. Outside CI the summary
# says so in capitals; in CI (CI=true, as .ci/run sets it) either, when its reason is not on this
# allow-list, fails the session.
# Allowed: what a CI machine may legitimately lack (a GPU; CLIP weights cached on this machine),
# or have (a GPU makes a CPU-only check moot).
import os
import re

ALLOWED_SKIPS = (
    r"needs a CUDA GPU",
    r"this machine has a GPU",
    r"these CLIP weights are in the local Hugging Face cache",
)
_SKIPPED: list[tuple[str, str]] = []


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def skip_allowed(reason: str) -> bool:
    return any(re.search(pattern, reason) for pattern in ALLOWED_SKIPS)


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:       # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report):
    # an expected failure (xfail) did not pass either: it meets the same allow-list, by its reason
    # (an unexpected pass fails anyway: xfail_strict in pyproject.toml)
    if report.skipped:
        why = f"xfail: {report.wasxfail}" if hasattr(report, "wasxfail") else _reason(report)
        _SKIPPED.append((report.nodeid, why))


def _not_allowed() -> list[tuple[str, str]]:
    return [(node, why) for node, why in _SKIPPED if not skip_allowed(why)]


def pytest_sessionfinish(session, exitstatus):
    if ci() and _not_allowed() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bad = _not_allowed()
    if not bad:
        return
    tr = terminalreporter
    if ci():
        tr.section("CI: SKIPPED TESTS FAIL THE RUN", sep="!", red=True, bold=True)
        tr.line("In CI (CI=true) a skip is a test that did not run. Not on the allow-list "
                "(tests/conftest.py, ALLOWED_SKIPS):", red=True)
    else:
        tr.section("THESE TESTS DID NOT RUN", sep="!", yellow=True, bold=True)
        tr.line("(they would fail the run in CI: CI=true)", yellow=True)
    for node, why in bad:
        tr.line(f"  {node}: {why}", red=ci(), yellow=not ci(), bold=True)


@pytest.fixture()
def strategies_run(monkeypatch):
    """The strategies of every run a test makes in this process (each ``Lab.runner``), in a set: a
    benchmark's ``CODE_SCOPE`` must list them all, or a change to one of them would leave its result fresh."""
    from mclfir_lite.lab import lab as lab_module
    seen = set()

    class Recording(lab_module.ContinualRunner):
        def __init__(self, strategy, *args, **kwargs):
            seen.add(strategy)
            super().__init__(strategy, *args, **kwargs)

    monkeypatch.setattr(lab_module, "ContinualRunner", Recording)
    return seen
