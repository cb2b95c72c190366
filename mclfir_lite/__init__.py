"""mclfir_lite: continual learning for fine-grained fashion image retrieval, the MCL-FIR way.

Modules, one idea each: ``settings`` (cache dir, quick mode), ``synth`` (SynthFashion),
``data`` (tables, protocol, sampling, increments), ``datasets`` (named datasets),
``encoders``, ``heads``, ``model``, ``losses``, ``ema``, ``metrics``, ``rankloops`` (the
AP's compiled loops), ``continual`` (the
runner and strategies), ``index`` (gallery index, neighbours), ``plots``, ``widgets``,
``cli``.
"""
from .settings import __version__  # noqa: F401  (one place: settings, the base layer)
