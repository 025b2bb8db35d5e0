# Type stubs of the compiled kernels (src/_recurrent.pyx). Arrays are C-contiguous and all
# of one dtype, float32 or float64; lengths is int64. G = n_gates·H: 4H for the LSTM, H for
# the RNN, 3H for the GRU; the cell-state buffers (c, dc) are the LSTM's, None otherwise;
# side (and db_hn) the GRU's, bias_hn Cell.GRU's, None otherwise. With the LSTM's projection
# (w_hr, P × H) the state h is P wide (W_hh G × P, out D·P), side holds m_t, and backward
# takes proj_grad (T·B × P scratch) and dw_hr; None without.
import enum

import numpy as np
from numpy.typing import NDArray

_F = NDArray[np.float32] | NDArray[np.float64]

class Cell(enum.IntEnum):
    LSTM = 0
    RNN_TANH = 1
    RNN_RELU = 2
    GRU = 3
    GRU_RESET_BEFORE = 4

def forward_layer(
    cell: Cell, x: _F, w_ih: _F, w_hh: _F, w_hr: _F | None, bias: _F, bias_hn: _F | None,
    lengths: NDArray[np.int64], gates: _F, side: _F | None, h: _F, c: _F | None, out: _F,
    out_col: int,
    reverse: bool, training: bool, n_threads: int,
) -> None: ...

def backward_layer(
    cell: Cell, x: _F, w_ih: _F, w_hh: _F, w_hr: _F | None, lengths: NDArray[np.int64],
    gates: _F, side: _F | None, proj_grad: _F | None, h: _F, c: _F | None, dout: _F,
    out_col: int, dh: _F, dc: _F | None, dw_ih: _F, dw_hh: _F, dw_hr: _F | None,
    db: _F | None, db_hn: _F | None,
    dx: _F | None,
    reverse: bool, n_threads: int,
) -> None: ...

def inference_chunk_steps(T: int, B: int, G: int, I: int) -> int: ...

def simd_level() -> str: ...

def elementwise(name: str, x: _F, y: _F) -> None: ...
