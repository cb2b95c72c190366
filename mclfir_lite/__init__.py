"""mclfir_lite: continual learning for fine-grained fashion image retrieval, the MCL-FIR way.

The package is laid out as its architecture: layers, bottom first, and a module imports only
from its own layer or a lower one (``tests/test_architecture.py`` checks it;
``docs/architecture.md`` draws it and maps each notebook to the modules it introduces):

==========  =================================================================================
layer       modules
==========  =================================================================================
base        ``settings`` (cache folder, quick mode, version), ``files`` (safe writes, locks,
            digests)
core        ``core``: ``encoders``, ``heads``, ``model``, ``losses``, ``metrics`` (+
            ``rankloops``, the AP's compiled loops), ``forgetting`` (accuracy matrix, BWT)
data        ``data``: ``synth`` (SynthFashion), ``table`` (tables, protocol, sampling,
            increments), ``imagedata``, ``datasets`` (named datasets), ``realdata`` (real
            datasets' registry and cache; one module per dataset, shared ``realutils``)
config      ``config`` (``Config``, presets)
methods     ``methods``: one strategy per file (``mclfir`` holds MCL-FIR and its EMA teacher)
training    ``training``: ``runner`` (``ContinualRunner``), ``evaluate``, ``batches``,
            ``checkpoint``, ``recipes``, ``distributed``
retrieval   ``retrieval``: ``features``, ``index`` (gallery index, neighbours), ``zeroshot``,
            language-conditioned retrieval (``captions``, ``texttower``, ``crossmodal``,
            ``compatibility``, ``textquery``, ``fusion``, ``composed``), ``runs``
lab         ``lab``: ``lab`` (``Lab``), ``claims``, ``report``, ``references``, ``labprep``,
            ``exercises``; figures: ``plots``, ``diagrams``, ``figures``; notebook views:
            ``views`` (pure functions) and ``widgets`` (thin ipywidgets over them)
entry       ``cli`` (``python -m mclfir_lite``), ``__main__``, this file
==========  =================================================================================

What the notebooks use most is importable from here (loaded on first use, so ``import
mclfir_lite`` stays light): ``Lab``, ``benchmark_result``, ``claim``, ``claim_greater``,
``claim_no_difference``, ``Config``, ``PRESETS``, ``preset``, ``preset_config``,
``ContinualRunner``, ``embed``, ``evaluate``, ``EMATeacher``, ``FashionTable``,
``make_protocol``, ``parse_increments``, ``load_dataset``, ``cache_dir``, ``quick_mode``.
"""
from importlib import import_module

from .settings import __version__  # noqa: F401  (one place: settings, the base layer)

_EXPORTS = {   # name -> the module that defines it (dotted from the package)
    "Lab": "lab.lab", "benchmark_result": "lab.lab", "StaleResultError": "lab.lab",
    "claim": "lab.claims", "claim_greater": "lab.claims", "claim_no_difference": "lab.claims",
    "Config": "config", "PRESETS": "config", "preset": "config", "preset_config": "config",
    "ContinualRunner": "training.runner", "embed": "training.evaluate", "evaluate": "training.evaluate",
    "EMATeacher": "methods.mclfir",
    "FashionTable": "data.table", "make_protocol": "data.table", "parse_increments": "data.table",
    "load_dataset": "data.datasets",
    "cache_dir": "settings", "quick_mode": "settings",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    """Load a re-exported name on first use (PEP 562)."""
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
