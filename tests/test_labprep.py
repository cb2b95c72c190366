"""``python -m mclfir_lite prepare-lab`` runs every numbered notebook once, in memory, so that
the cache is full before class; a failing notebook is named and the exit status is 1."""
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def _notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)


def _run(folder, cache, *extra):
    env = {"MCLFIR_CACHE": str(cache), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cache)}
    return subprocess.run([sys.executable, "-m", "mclfir_lite", "prepare-lab", "--notebooks", str(folder), *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def test_prepare_lab_runs_each_notebook_in_order_without_changing_it(tmp_path):
    folder, cache = tmp_path / "nbs", tmp_path / "cache"
    folder.mkdir()
    cell = ("import os, pathlib\np = pathlib.Path(os.environ['MCLFIR_CACHE']) / 'order.txt'\n"
            "p.parent.mkdir(parents=True, exist_ok=True)\n"
            "p.write_text(p.read_text() + '{}' + os.environ.get('MCLFIR_QUICK', '-') if p.exists() else '{}' "
            "+ os.environ.get('MCLFIR_QUICK', '-'))")
    for name in ("01_b", "00_a"):
        _notebook(folder / f"{name}.ipynb", cell.format(name, name))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    p = _run(folder, cache, "--quick")
    assert p.returncode == 0, p.stderr
    assert (cache / "order.txt").read_text() == "00_a101_b1"      # in order, in quick mode
    assert {q.name: q.read_bytes() for q in folder.iterdir()} == before
    assert "00_a.ipynb" in p.stdout and "done in" in p.stdout


def test_prepare_lab_names_a_failing_notebook(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_ok.ipynb", "x = 1")
    _notebook(folder / "01_bad.ipynb", "raise ValueError('broken on purpose')")
    p = _run(folder, tmp_path / "cache")
    assert p.returncode == 1 and "01_bad.ipynb failed" in p.stderr and "broken on purpose" in p.stderr


def test_prepare_lab_names_an_only_prefix_that_matches_nothing(tmp_path):
    """--only 99 ran nothing and blamed the folder ("no numbered notebooks found here")."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name in ("00_a", "01_b"):
        _notebook(folder / f"{name}.ipynb", "x = 1")
    p = _run(folder, tmp_path / "cache", "--only", "01", "99")
    assert p.returncode == 2 and "--only 99: no notebook's name starts with that" in p.stderr
    assert "from 00 to 01" in p.stderr and not (tmp_path / "cache").exists()
