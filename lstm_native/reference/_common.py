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


# ----------------------------------------------------------------------------------
# Whole sequences, stacked layers, both directions: the loop every cell shares
# ----------------------------------------------------------------------------------

def _states(given, names, shapes, dtype):
    """The states named `names` (h0, c0 or their gradients dh_n, dc_n), each of its
    shape in `shapes`, as arrays of `dtype`: zeros for `given` None."""
    if given is None:
        return [np.zeros(shape, dtype=dtype) for shape in shapes]
    states = [np.asarray(s, dtype=dtype) for s in given]
    for name, s, shape in zip(names, states, shapes):
        if s.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {s.shape}")
    return states


def _run_layers(x, lengths, params, num_layers, num_directions, states0, step_for):
    """Run stacked layers of a cell over a time-major batch. The first state is the
    layer's output (h).

    At each step t only the sequences that have it (t < lengths) run the cell's step; the
    others carry their states unchanged and output zero, so the reverse direction starts
    at each sequence's last valid step. `states0` holds the initial states, (D·L, N, ·)
    each, index layer·D + direction; `step_for(layer, direction, in_size)` gives the
    step of that layer and direction, ``step(x_t, states, active) -> (new_states,
    cache)`` on the active sequences' rows.

    Returns the last layer's output (T, N, D·W), the final states (as `states0`) and the
    cache `_run_layers_backward` needs (with the steps' caches).
    """
    T, N, _ = x.shape
    L, D, W = num_layers, num_directions, states0[0].shape[2]
    finals = [np.zeros_like(s) for s in states0]
    layer_caches = []  # layer_caches[layer][direction][t] = step cache, or None if no row ran
    layer_in = x
    for layer in range(L):
        layer_out = np.zeros((T, N, D * W), dtype=x.dtype)
        direction_caches = []
        for d in range(D):
            step = step_for(layer, d, layer_in.shape[2])
            states = [s[layer * D + d].copy() for s in states0]
            step_caches = [None] * T
            for t in (range(T) if d == 0 else reversed(range(T))):
                active = t < lengths  # the sequences that have a step t
                if not active.any():
                    continue
                new, step_caches[t] = step(layer_in[t, active], [s[active] for s in states],
                                           active)
                for s, value in zip(states, new):
                    s[active] = value
                layer_out[t, active, d * W:(d + 1) * W] = new[0]
            for final, s in zip(finals, states):
                final[layer * D + d] = s
            direction_caches.append(step_caches)
        layer_caches.append(direction_caches)
        layer_in = layer_out
    cache = {"layer_caches": layer_caches, "lengths": lengths, "input_size": x.shape[2],
             "num_layers": L, "num_directions": D, "dtype": x.dtype,
             "state_shapes": [s.shape for s in states0],
             "param_shapes": {name: np.shape(p) for name, p in params.items()}}
    return layer_in, finals, cache


def _run_layers_backward(dout, cache, d_finals, names, step_backward):
    """Backpropagation through time for `_run_layers`: `d_finals` the gradients on the
    final states (None: zeros; `names` theirs, for messages), ``step_backward(d_states,
    step_cache) -> (dx_t, d_prev_states, grads)`` with d_states the gradients on the
    step's new states (the output's included in the first) and grads keyed by parameter
    kind (``weight_ih``, ...). Returns dx (T, N, I), the initial states' gradients and
    every parameter's (the keys and shapes of the params `_run_layers` was given)."""
    L, D, dtype = cache["num_layers"], cache["num_directions"], cache["dtype"]
    lengths, shapes = cache["lengths"], cache["state_shapes"]
    T, N = len(cache["layer_caches"][0][0]), shapes[0][1]
    W = shapes[0][2]
    dout = np.asarray(dout, dtype=dtype)
    if dout.shape != (T, N, D * W):
        raise ValueError(f"dout must have shape {(T, N, D * W)}, got {dout.shape}")
    d_finals = _states(d_finals, names, shapes, dtype)
    grads = {name: np.zeros(shape, dtype=dtype)
             for name, shape in cache["param_shapes"].items()}
    d_initials = [np.zeros(shape, dtype=dtype) for shape in shapes]

    d_layer_out = dout
    for layer in reversed(range(L)):
        in_size = cache["input_size"] if layer == 0 else D * W
        d_layer_in = np.zeros((T, N, in_size), dtype=dtype)
        for d in range(D):
            step_caches = cache["layer_caches"][layer][d]
            # ∂L/∂ of the states, carried back from later steps
            ds = [s[layer * D + d].copy() for s in d_finals]
            # Visit the steps in the opposite order of the forward pass.
            for t in (reversed(range(T)) if d == 0 else range(T)):
                active = t < lengths
                if not active.any():
                    continue
                d_states = [ds[0][active] + d_layer_out[t, active, d * W:(d + 1) * W]]
                d_states += [s[active] for s in ds[1:]]
                dx_t, d_prev, step_grads = step_backward(d_states, step_caches[t])
                for s, value in zip(ds, d_prev):
                    s[active] = value
                d_layer_in[t, active] += dx_t
                for kind, g in step_grads.items():
                    grads[_param_name(kind, layer, d)] += g
            for d_initial, s in zip(d_initials, ds):
                d_initial[layer * D + d] = s
        d_layer_out = d_layer_in
    return d_layer_out, d_initials, grads


def _run_hidden_layers(x, params, h0, lengths, num_layers, bidirectional, n_gates,
                       cell_forward, input_masks, recurrent_masks):
    """`_run_layers` for a cell whose only state is h (the RNN, the GRU):
    ``cell_forward(x_t, h, w_ih, w_hh, b_ih, b_hh, input_mask=..., recurrent_mask=...)``
    gives ``(h_new, step_cache)``. Returns (out, h_n, cache)."""
    x, lengths = _check_sequence(x, params, lengths, num_layers, bidirectional)
    D = 2 if bidirectional else 1
    H = np.asarray(params["weight_hh_l0"]).shape[1]
    (h0,) = _states(None if h0 is None else (h0,), ("h0",),
                    ((D * num_layers, x.shape[1], H),), x.dtype)

    def step_for(layer, d, in_size):
        w_ih, w_hh, b_ih, b_hh, _ = _layer_params(params, layer, d, in_size, H, x.dtype,
                                               n_gates=n_gates)

        def step(x_t, states, active):
            h_new, step_cache = cell_forward(
                x_t, states[0], w_ih, w_hh, b_ih, b_hh,
                input_mask=_step_masks(input_masks, layer * D + d, active),
                recurrent_mask=_step_masks(recurrent_masks, layer * D + d, active))
            return (h_new,), step_cache
        return step

    out, (h_n,), cache = _run_layers(x, lengths, params, num_layers, D, [h0], step_for)
    return out, h_n, cache


def _run_hidden_layers_backward(dout, cache, dh_n, cell_backward):
    """`_run_layers_backward` for `_run_hidden_layers`: ``cell_backward(dh, step_cache)``
    gives ``(dx_t, dh_prev, grads)``. Returns (dx, dh0, grads)."""
    def step_backward(d_states, step_cache):
        dx_t, dh_prev, grads = cell_backward(d_states[0], step_cache)
        return dx_t, (dh_prev,), grads

    dx, (dh0,), grads = _run_layers_backward(
        dout, cache, None if dh_n is None else (dh_n,), ("dh_n",), step_backward)
    return dx, dh0, grads
