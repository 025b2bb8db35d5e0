# Type stubs of the compiled kernels (src/_lstm.pyx). Arrays are C-contiguous and all of
# one dtype, float32 or float64; lengths is int64.
import numpy as np
from numpy.typing import NDArray

_F = NDArray[np.float32] | NDArray[np.float64]

def forward_layer(
    x: _F, w_ih: _F, w_hh: _F, bias: _F, lengths: NDArray[np.int64],
    gates: _F, h: _F, c: _F, out: _F, out_col: int,
    reverse: bool, training: bool, n_threads: int,
) -> None: ...

def backward_layer(
    x: _F, w_ih: _F, w_hh: _F, lengths: NDArray[np.int64],
    gates: _F, h: _F, c: _F, dout: _F, out_col: int,
    dh: _F, dc: _F, dw_ih: _F, dw_hh: _F, db: _F | None, dx: _F | None,
    reverse: bool, n_threads: int,
) -> None: ...
