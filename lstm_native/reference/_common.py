"""What the cells of `lstm_native.reference` share: the nonlinearities σ and relu, and
the checks of a stack of layers' parameters (PyTorch's names and shapes), of the input
sequence and of its lengths."""
from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------------
# The nonlinearities
# ----------------------------------------------------------------------------------

def sigmoid(z):
    """The logistic function σ(z) = 1 / (1 + exp(−z)), without overflow for large |z|."""
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(z):
    """The rectifier relu(z) = max(z, 0)."""
    return np.maximum(z, 0)


# ----------------------------------------------------------------------------------
# Whole sequences, stacked layers, both directions: names and checks
# ----------------------------------------------------------------------------------

def _param_name(kind, layer, direction):
    """PyTorch's parameter name, e.g. ``weight_ih_l1_reverse``."""
    return f"{kind}_l{layer}" + ("_reverse" if direction == 1 else "")


def _layer_params(params, layer, direction, in_size, H, dtype, n_gates=4, proj_size=0):
    """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction, checked and cast to
    dtype; n_gates blocks of H rows (4 for the LSTM, 1 for the RNN, 3 for the GRU); w_hr
    (proj_size, H) with a projection, else None."""
    G = n_gates * H
    P = proj_size or H
    expected = {
        "weight_ih": (G, in_size),
        "weight_hh": (G, P),
        "bias_ih": (G,),
        "bias_hh": (G,),
        "weight_hr": (P, H),
    }
    out = []
    for kind, shape in expected.items():
        name = _param_name(kind, layer, direction)
        if kind == "weight_hr" and not proj_size:
            out.append(None)
            continue
        if name not in params:
            if kind.startswith("bias"):
                out.append(None)
                continue
            raise KeyError(f"params is missing {name!r}")
        p = np.asarray(params[name], dtype=dtype)
        if p.shape != shape:
            raise ValueError(f"params[{name!r}] must have shape {shape}, got {p.shape}")
        out.append(p)
    return tuple(out)


def _check_lengths(lengths, T, N):
    """Lengths as an int array of N values in 1..T (all T when None)."""
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be {N} ints, got {lengths!r}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must lie in 1..{T}, got {lengths}")
    return lengths.astype(np.int64)


def _check_sequence(x, params, lengths, num_layers, bidirectional, projection=False,
                    extra=()):
    """x as a (T, N, I) float array and lengths as N ints in 1..T; params must hold no
    names but a stack of num_layers (bidirectional) layers' weights and biases (and
    projections, when `projection`, and the parameters of the kinds `extra`)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (T, N, I), got {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    T, N, _ = x.shape
    known = {
        _param_name(kind, layer, d)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        + (("weight_hr",) if projection else ()) + tuple(extra)
        for layer in range(num_layers)
        for d in range(2 if bidirectional else 1)
    }
    unknown = set(params) - known
    if unknown:
        raise KeyError(f"params has unexpected entries {sorted(unknown)}")
    return x, _check_lengths(lengths, T, N)


def dropped(a, mask):
    """a ⊙ mask, a variational dropout mask (one per sequence, the same at every step:
    Gal & Ghahramani 2016); a itself for mask None."""
    return a if mask is None else a * mask


def _step_masks(masks, idx, active):
    """The masks of layer and direction `idx` (an index into `masks`, D·L arrays of
    (N, ·), or None) for the active sequences of a step."""
    return None if masks is None else np.asarray(masks[idx])[active]
