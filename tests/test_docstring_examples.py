"""Every `>>>` example in the package's docstrings runs and prints what it
says."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import tfcompress
import tfcompress.layers

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(tfcompress.__path__, "tfcompress.")
    if info.name not in ("tfcompress.__main__",)
)
GLOBALS = {
    "keras": keras,
    "np": np,
    **{name: getattr(tfcompress.layers, name) for name in tfcompress.layers.__all__},
}


def test_examples_are_found():
    with_examples = [m for m in MODULES if _run(m).attempted]
    assert "tfcompress.layers.cp_conv2d" in with_examples
    assert "tfcompress.analysis.profiler" in with_examples
    assert len(with_examples) >= 10


def _run(module_name):
    module = importlib.import_module(module_name)
    return doctest.testmod(module, extraglobs=GLOBALS, verbose=False, report=False)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    assert _run(module_name).failed == 0
