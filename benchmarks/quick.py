"""The quick profile: benchmarks.py's benchmarks (LSTM, GRU, LSTMP) on S, F and A, float32,
1 thread.

Batch 1, small and overhead-bound, and one large shape: a few minutes' check of a commit
(``asv run -b "^quick\\."``) where the full matrix takes much longer.
"""
from .benchmarks import Backward as _Backward
from .benchmarks import GRUBackward as _GRUBackward
from .benchmarks import GRUInference as _GRUInference
from .benchmarks import GRUTrainingStep as _GRUTrainingStep
from .benchmarks import Inference as _Inference
from .benchmarks import LSTMPBackward as _LSTMPBackward
from .benchmarks import LSTMPInference as _LSTMPInference
from .benchmarks import LSTMPTrainingStep as _LSTMPTrainingStep
from .benchmarks import TrainingStep as _TrainingStep

#: config, dtype, n_threads, as in benchmarks.py.
PARAMS = [["S", "F", "A"], ["float32"], [1]]


class Inference(_Inference):
    params = PARAMS


class TrainingStep(_TrainingStep):
    params = PARAMS


class Backward(_Backward):
    params = PARAMS


class GRUInference(_GRUInference):
    params = PARAMS


class GRUTrainingStep(_GRUTrainingStep):
    params = PARAMS


class GRUBackward(_GRUBackward):
    params = PARAMS


class LSTMPInference(_LSTMPInference):
    params = PARAMS


class LSTMPTrainingStep(_LSTMPTrainingStep):
    params = PARAMS


class LSTMPBackward(_LSTMPBackward):
    params = PARAMS
