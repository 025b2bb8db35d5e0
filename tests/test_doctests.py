"""The examples in the docstrings run, and say what they print.

The examples run here, from a test module, rather than through pytest's
``--doctest-modules``: this way they test the package that ``import lstm_native`` finds
(an installed wheel as well as the source tree), whichever path pytest is given, and
nothing under ``lstm_native/`` (no conftest) is needed to run them.
"""
import doctest
import importlib
import pkgutil

import pytest

import lstm_native
from lstm_native import (LSTM, RNN, LSTMCell, RNNCell, Sequential, evaluate, fit, load_model,
                         predict, save_checkpoint)
from lstm_native.data import (MinMaxScaler, StandardScaler, chronological_split,
                              forecast_recursive, load_csv, load_dataset, make_windows,
                              persistence_forecast, scaler_from_state)

# Every module of the package; a `__main__` runs its program when imported.
MODULES = sorted(m.name for m in pkgutil.walk_packages(lstm_native.__path__, "lstm_native.")
                 if not m.name.endswith(".__main__"))

#: The public API whose docstrings must show an example.
WITH_EXAMPLES = [LSTM, RNN, LSTMCell, RNNCell, Sequential, fit, predict, evaluate, save_checkpoint,
                 load_model, make_windows,
                 StandardScaler, MinMaxScaler, scaler_from_state, chronological_split,
                 persistence_forecast, forecast_recursive, load_dataset, load_csv]

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


#: The bridges' modules and the framework each one imports: skipped where it is missing.
FRAMEWORKS = {"lstm_native.torch": "torch", "lstm_native.onnx": "onnx",
              "lstm_native._onnx_ops": "onnx", "lstm_native._onnx_load": "onnx",
              "lstm_native.bench.torch_loop": "torch"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name in FRAMEWORKS:
        pytest.importorskip(FRAMEWORKS[name])
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    # Each docstring runs in its own copy of the module's globals.
    for test in finder.find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("obj", WITH_EXAMPLES, ids=lambda obj: obj.__name__)
def test_public_api_shows_an_example(obj):
    doc = obj.__doc__ or ""
    assert "    Examples\n    --------\n" in doc and ">>> " in doc.split("Examples")[-1]
    examples = doctest.DocTestParser().get_examples(doc)
    assert examples and all("doctest: +SKIP" not in e.source for e in examples)
