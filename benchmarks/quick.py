"""The quick profile: benchmarks.py's benchmarks (the LSTM, GRU, LSTMP, the peephole and
the layer-normalised LSTM) on S, F and A, float32, 1 thread.

Batch 1, small and overhead-bound, and one large shape: a few minutes' check of a commit
(``asv run -b "^quick\\."``) where the full matrix takes much longer.
"""
from . import benchmarks as _full

#: config, dtype, n_threads, as in benchmarks.py.
PARAMS = [["S", "F", "A"], ["float32"], [1]]

#: Each benchmark of benchmarks.py again, on PARAMS, under its own name (asv finds a
#: class by the name it is bound to in the module, which must be its ``__name__``).
_NAMES = [prefix + base for prefix in ("", "GRU", "LSTMP", "LSTMPeephole", "LNLSTM")
          for base in ("Inference", "TrainingStep", "Backward")]
for _name in _NAMES:
    globals()[_name] = type(_name, (getattr(_full, _name),),
                            {"params": PARAMS, "__module__": __name__})
