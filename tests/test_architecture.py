"""The package's layout is its architecture (issue 24), checked on the modules' own imports.

Every import in ``mclfir_lite`` (module level *and* inside functions) is read with ``ast``
and resolved to a module of the package. Then:

* the layers below are ordered, bottom first: a module imports only from its own layer or
  lower ones (a learner reads the package bottom-up, and nothing lower depends on a
  higher floor);
* there is no import circle, not even inside one layer;
* no private name (``_x``) is imported from another module, by the package, the
  benchmarks, the docs' scripts or the data scripts;
* no module is over 600 lines;
* MCL-FIR is one file of at most 150 lines that holds its EMA teacher.

docs/architecture.md draws the same layers.
"""
from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mclfir_lite"

# bottom first; a pattern names modules by their dotted path inside the package
LAYERS = [
    ("base", ["settings", "files", "workers"]),
    ("core", ["core", "core.*"]),
    ("data", ["data", "data.*"]),
    ("config", ["config"]),
    ("methods", ["methods", "methods.*"]),
    ("training", ["training", "training.*"]),
    ("retrieval", ["retrieval", "retrieval.*"]),
    ("lab", ["lab", "lab.*"]),
    ("entry", ["cli", "cli.*", "__main__", "__init__"]),
]
MAX_LINES = 600
MCLFIR_FILE, MCLFIR_MAX = PKG / "methods" / "mclfir.py", 150


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = f.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def layer(name: str) -> int:
    for k, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return k
    raise AssertionError(f"module {name!r} is in no layer of tests/test_architecture.py: add it to LAYERS")


def _package_of(name: str, path: Path) -> list[str]:
    parts = name.split(".") if name not in ("__init__", "__main__") else []
    return parts if path.name == "__init__.py" else parts[:-1]


def imports(name: str, path: Path, known: set[str]):
    """(imported module, names, line) for every import of the package in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "mclfir_lite" or a.name.startswith("mclfir_lite."):
                    yield a.name[len("mclfir_lite."):] or "__init__", [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(name, path)
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "mclfir_lite" or node.module.startswith("mclfir_lite.")):
                target = node.module[len("mclfir_lite."):] if node.module != "mclfir_lite" else ""
            else:
                continue
            names = [a.name for a in node.names]
            for n in names:   # "from .pkg import module" imports a module
                sub = f"{target}.{n}" if target else n
                if sub in known:
                    yield sub, [], node.lineno
            rest = [n for n in names if (f"{target}.{n}" if target else n) not in known]
            if rest:
                yield (target or "__init__"), rest, node.lineno


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    g = {m: set() for m in mods}
    for m, p in mods.items():
        for target, _, _ in imports(m, p, known):
            if target in known and target != m:
                g[m].add(target)
    return g


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    g = graph()
    bad = [f"{m} (layer {LAYERS[layer(m)][0]}) imports {t} (layer {LAYERS[layer(t)][0]})"
           for m, targets in g.items() for t in sorted(targets)
           if layer(t) > layer(m)]
    assert not bad, "imports that run up a floor:\n" + "\n".join(bad)


def test_no_import_circles():
    g = graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):   # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not cycles, f"import circles: {cycles}"


def _private_imports(files, known):
    bad = []
    for name, path in files:
        for target, names, line in imports(name, path, known):
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line} imports {n} from {target}")
    return bad


def test_no_private_name_is_imported_across_modules():
    mods = modules()
    outside = [(p.stem, p) for d in ("benchmarks", "docs", "data_scripts") for p in sorted((ROOT / d).rglob("*.py"))]
    bad = _private_imports(list(mods.items()) + outside, set(mods))
    assert not bad, "\n".join(bad)


def test_no_module_is_over_600_lines():
    big = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_mclfir_is_one_file_on_one_screen_with_its_ema_teacher():
    assert MCLFIR_FILE.is_file(), f"{MCLFIR_FILE.relative_to(ROOT)} is missing"
    src = MCLFIR_FILE.read_text()
    assert len(src.splitlines()) <= MCLFIR_MAX, f"{MCLFIR_FILE.name}: {len(src.splitlines())} lines > {MCLFIR_MAX}"
    tree = ast.parse(src)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    teacher = [c for c in classes if "teacher" in c.lower()]
    assert teacher, "methods/mclfir.py defines no teacher class"
    body = ast.unparse(classes[teacher[0]])
    assert "decay" in body and ("mul_" in body or "lerp" in body), "the teacher's EMA update is not in methods/mclfir.py"


def test_the_checks_can_fail(tmp_path):
    """A private import, an upward import and a circle are all seen (on a made-up package)."""
    f = tmp_path / "probe.py"
    f.write_text("from .x import _hidden\nfrom ..lab import widgets\n")
    found = list(imports("core.probe", f, {"core.x", "core.probe", "lab.widgets"}))
    assert ("core.x", ["_hidden"], 1) in found and ("lab.widgets", [], 2) in found
    assert _private_imports([("core.probe", f)], {"core.x", "core.probe", "lab.widgets"})
    assert layer("lab.widgets") > layer("core.probe")
