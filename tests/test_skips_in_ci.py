"""tests/conftest.py: a skip is a test that did not run. Outside CI the summary says so loudly;
in CI (CI=true) a skip whose reason is not on the allow-list fails the session."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = '''
import pytest

def test_runs():
    pass

def test_browser_missing():
    pytest.skip("no chromium on the PATH")

@pytest.mark.skipif(True, reason="needs a CUDA GPU")
def test_gpu():
    pass

@pytest.mark.xfail(reason="known")
def test_known():
    assert False
'''


def _run(folder: Path, ci: str | None, select: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)]
    if select:
        args += ["-k", select]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("skips")
    shutil.copy(Path(__file__).with_name("conftest.py"), folder / "conftest.py")
    (folder / "test_demo.py").write_text(DEMO)
    return folder


def test_outside_ci_a_skip_passes_but_is_named_loudly(demo):
    out = _run(demo, None)
    assert out.returncode == 0, out.stdout
    assert "THESE TESTS DID NOT RUN" in out.stdout and "test_browser_missing: no chromium on the PATH" in out.stdout
    assert "test_gpu" not in out.stdout.split("THESE TESTS DID NOT RUN")[1].split("short test summary")[0]


def test_in_ci_a_skip_off_the_allow_list_fails(demo):
    out = _run(demo, "true")
    assert out.returncode == 1, out.stdout
    assert "CI: SKIPPED TESTS FAIL THE RUN" in out.stdout and "no chromium on the PATH" in out.stdout


def test_in_ci_allowed_skips_pass(demo):
    out = _run(demo, "true", select="not browser_missing and not known")
    assert out.returncode == 0, out.stdout
    assert "FAIL THE RUN" not in out.stdout


def test_in_ci_an_xfail_off_the_allow_list_fails(demo):
    """An expected failure is a test that did not pass: the allow-list applies to it too."""
    out = _run(demo, "true", select="not browser_missing")
    assert out.returncode == 1, out.stdout
    assert "CI: SKIPPED TESTS FAIL THE RUN" in out.stdout and "test_known: xfail: known" in out.stdout
    assert _run(demo, None, select="not browser_missing").returncode == 0   # outside CI: named, not failed


def test_an_xfail_that_passes_fails_the_run(tmp_path):
    """xfail_strict (pyproject.toml): a test marked as failing that passes is an out-of-date mark."""
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    shutil.copy(Path(__file__).resolve().parents[1] / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "test_stale_mark.py").write_text(
        "import pytest\n\n@pytest.mark.xfail(reason='was broken')\ndef test_fixed():\n    assert True\n")
    out = _run(tmp_path, None)
    assert out.returncode == 1 and "XPASS(strict)" in out.stdout, out.stdout
