"""`LSTM` and `LSTMCell`: PyTorch's API and semantics, the native kernels underneath.

`LSTM` is the shared recurrent layer of `lstm_native.recurrent` with the LSTM cell: it
checks and converts what the user passes, allocates the outputs and the buffers backward
needs, and calls `lstm_native._recurrent` once per layer and direction over the whole
sequence. The kernels hold all the math; the equations they implement are written out
for a reader in `lstm_native.reference`.
"""
from __future__ import annotations

import numpy as np

from . import _recurrent
from ._parallel import check_n_threads, effective_n_threads, single_threaded_blas
from ._validation import (MAX_FEATURES, check_bool, check_device, check_model_dtype,
                          check_parameter_count, check_seed, check_size)
from .module import one_thread_in_training
from .recurrent import (_Cell, _Recurrent, add_initial_parameters, check_clip, check_init,
                        check_state, check_state_pair, check_unit_forget_bias)

__all__ = ["LSTM", "LSTMCell"]


class LSTM(_Recurrent):
    """A multi-layer LSTM over whole sequences, as `torch.nn.LSTM`.

    For each step t and layer, with gates in PyTorch's order (input, forget, candidate,
    output)::

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)

    and with a projection (`proj_size` P > 0, LSTMP), h_t = W_hr (o_t ⊙ tanh(c_t)).
    The variants the ONNX LSTM operator defines change the gates: with `peepholes`
    (weights p_i, p_f, p_o) i_t and f_t also read p_i ⊙ c_{t-1} and p_f ⊙ c_{t-1}, o_t
    reads p_o ⊙ c_t; with `clip` every gate's pre-activation (all its terms) is clipped
    to [-clip, clip] before σ or tanh; with `input_forget`, f_t = 1 - i_t. The
    layer-normalised LSTM (`layer_norm`) normalises the two projections and the cell::

        [i, f, g, o]_t = LN(W_ih x_t; γ_ih, β_ih) + LN(W_hh h_{t-1}; γ_hh, β_hh) + b
        h_t = o_t ⊙ tanh(LN(c_t; γ_c, β_c))

    Parameters
    ----------
    input_size : int
        Features of each input step, I, in 1..2**20.
    hidden_size : int
        Features of the hidden and cell states, H, in 1..2**20.
    num_layers : int, default 1
        Stacked layers, L, in 1..1024; layer k > 0 reads the output of layer k - 1.
    bias : bool, default True
        Whether the layers have the biases `bias_ih_l{k}` and `bias_hh_l{k}`.
    batch_first : bool, default False
        Inputs and outputs are (N, T, ·) instead of (T, N, ·). States are always (D·L, N, H).
    dropout : float, default 0.0
        In training mode, the probability of zeroing each element of the output of every
        layer but the last (the next layer's input), the others scaled by 1/(1 - p), as
        torch's; in [0, 1]. The masks come from the layer's own generator, seeded by
        `seed` (`rng_state`); eval mode is the identity. With one layer it does nothing
        and warns, as torch.
    bidirectional : bool, default False
        Each layer also runs the sequence backwards (D = 2); its output is concatenated
        after the forward direction's.
    proj_size : int, default 0
        With P > 0, each step's hidden state is projected to P features by
        `weight_hr_l{k}` (P, H): h, h_n, the output (D·P wide) and the input of layer
        k > 0 are P wide, c stays H wide (torch's LSTM with projections, LSTMP); in
        0..hidden_size - 1, 0 for none.
    device : None, "cpu" or torch.device("cpu")
        As torch's: the kernels run on the CPU; any other device is a ValueError.
    dtype : np.float32, np.float64, their names, or torch.float32 / torch.float64
        The precision of parameters and computation; default float32. The arguments up
        to here are torch's, in its order; the rest are keyword-only.
    init : {"torch", "keras"}, default "torch"
        The initialisation: torch's U(-1/sqrt(H), 1/sqrt(H)) for every parameter, or
        Keras' (Glorot-uniform `weight_ih` and `weight_hr`, an orthogonal `weight_hh` over
        all four gates at once, the transpose of Keras' (H, 4H) recurrent kernel, zero
        biases; `lstm_native.init`).
    unit_forget_bias : bool, default False
        Keras' `unit_forget_bias` (Jozefowicz et al. 2015): the forget gate's bias starts
        at 1 (its block of `bias_ih` set to 1, of `bias_hh` to 0, in place of the drawn
        values; the rest as `init` draws it). Needs `bias`.
    peepholes : bool, default False
        Peephole connections (Gers & Schmidhuber 2000, as the ONNX LSTM operator's `P`):
        `weight_peephole_l{k}` (3, H), rows p_i, p_f, p_o, drawn as the other weights by
        `init` ("keras": U(±sqrt(3/H)), as TF's PeepholeLSTMCell's Glorot-uniform (H,)
        vectors). ONNX orders P's rows i, o, f.
    clip : float or None, default None
        The ONNX operator's `clip`, as ONNX Runtime applies it: every gate's
        pre-activation, bias and peephole terms included (the candidate's too), is
        clipped to [-clip, clip] before its σ or tanh; c_t is not clipped. The gradient
        is zero where a value was clipped. A finite number > 0, or None for none.
    input_forget : bool, default False
        The ONNX operator's `input_forget` (coupled input and forget gates, Greff et al.
        2017's CIFG): f_t = 1 - i_t. The weights keep their 4H rows (ONNX's and torch's
        shapes); the forget rows (and p_f) are unused and get zero gradients.
    input_dropout : float, default 0.0
        Variational dropout of the input (Gal & Ghahramani 2016, as Keras' `dropout`):
        in training mode each feature of x_t is zeroed with this probability, the
        others scaled by 1/(1 - p), by one mask per sequence, layer and direction
        that is the same at every step and for every gate; in [0, 1]. The masks come
        from the layer's generator (`seed`, `rng_state`); a stateful `Sequential`
        holds them across the chunks of its streams. Eval mode is the identity.
    recurrent_dropout : float, default 0.0
        Variational dropout of the recurrent connection (Keras' `recurrent_dropout`),
        the same way on the copy of h_{t-1} that W_hh reads (P wide with a
        projection); the state itself is not dropped. Keras 3 draws one mask per gate
        when it is set; these are shared by the gates, as Gal & Ghahramani's tied
        weights. Both combine with `dropout` (between layers) and every other option.
    layer_norm : bool, default False
        The layer-normalised LSTM (Ba, Kiros & Hinton 2016, eq. 20-22): layer
        normalisation (mean and variance over the whole vector, epsilon 1e-5) of the
        input projection W_ih x_t and of the recurrent projection W_hh h_{t-1}, each
        over all 4H pre-activations with its own gain and bias, before the biases b_ih
        + b_hh are added, and of c_t (H values) before the output's tanh; the state c_t
        itself is not normalised. Parameters `weight_ln_ih_l{k}`, `bias_ln_ih_l{k}`,
        `weight_ln_hh_l{k}`, `bias_ln_hh_l{k}` (4H,), `weight_ln_c_l{k}`,
        `bias_ln_c_l{k}` (H,), gains starting at 1 and biases at 0 under either `init`.
        Combines with `proj_size` and the dropouts, not with `peepholes`, `clip` or
        `input_forget` (ValueError). The kernels then always split the batch rows
        between threads, as the normalisation reads a whole row.
    seed : int, numpy Generator or None
        Seed of the initialisation, whose generator then draws the dropout masks; an int
        >= 0.
    n_threads : int or None
        OpenMP threads of the kernels, in 1..1024, used up to the cores the process may
        run on; None uses OMP_NUM_THREADS when it is set, else the physical cores the
        process may use (its CPU affinity and cgroup quota; hyper-threads count once).

    Attributes
    ----------
    grads : dict of str to numpy.ndarray
        The gradient of every parameter, same keys and shapes as `state_dict()`;
        `backward` adds into it, `zero_grad` clears it.

    Notes
    -----
    Parameter names and shapes are PyTorch's: `weight_ih_l{k}` (4H, in), `weight_hh_l{k}`
    (4H, H), or (4H, P) with a projection, `bias_ih_l{k}` and `bias_hh_l{k}` (4H,), and
    `weight_hr_l{k}` (P, H) with a projection, with the suffix `_reverse` for the
    backward direction; so `load_state_dict(torch_lstm.state_dict())` works. The
    variants' own come after torch's, and every option combines with the others and
    with `proj_size` (the peepholes read c, which stays H wide).

    Limits (`lstm_native._validation`): at most 2**31 - 1 parameters, and at most 2**30
    rows T·N in one call. A float64 input to a float32 model must fit float32's range
    (ValueError naming the argument otherwise); nan and inf in the input propagate, as
    in torch. Threads: inference (eval mode) may run in many threads at once; training is
    one thread at a time, and another thread's training call raises RuntimeError.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native import LSTM
    >>> lstm = LSTM(input_size=3, hidden_size=5, num_layers=2, batch_first=True, seed=0)
    >>> x = np.random.default_rng(0).standard_normal((4, 10, 3))   # (N, T, I)
    >>> out, (h_n, c_n) = lstm(x)
    >>> out.shape, h_n.shape, c_n.shape
    ((4, 10, 5), (2, 4, 5), (2, 4, 5))
    >>> bool(np.array_equal(out[:, -1], h_n[-1]))  # the top layer's last step
    True

    A training step: back-propagate the loss's gradient with respect to `out`.

    >>> dx, (dh0, dc0) = lstm.backward(np.ones_like(out))
    >>> dx.shape, lstm.grads["weight_ih_l0"].shape
    ((4, 10, 3), (20, 3))
    """

    _n_gates = 4
    _state_names = ("h", "c")
    _cell = _recurrent.Cell.LSTM
    _cell_defaults = {"proj_size": 0, "unit_forget_bias": False, "peepholes": False,
                      "clip": None, "input_forget": False, "layer_norm": False}

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=np.float32, *, init: str = "torch", unit_forget_bias: bool = False,
                 peepholes: bool = False, clip: float | None = None,
                 input_forget: bool = False, input_dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, layer_norm: bool = False,
                 seed: int | None = None, n_threads: int | None = None):
        self.peepholes = check_bool(peepholes, "peepholes")
        self.clip = check_clip(clip)
        self.input_forget = check_bool(input_forget, "input_forget")
        self.layer_norm = check_layer_norm(layer_norm, self.peepholes, self.clip,
                                           self.input_forget)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, seed, n_threads, proj_size, init,
                         unit_forget_bias, input_dropout, recurrent_dropout)

    def _cell_config(self) -> dict:
        return {"proj_size": self.proj_size, "unit_forget_bias": self.unit_forget_bias,
                "peepholes": self.peepholes, "clip": self.clip,
                "input_forget": self.input_forget, "layer_norm": self.layer_norm}

    def _extra_shapes(self) -> dict:
        return variant_shapes(self.hidden_size, self.peepholes, self.layer_norm)

    def _kernel_options(self, sfx: str, grads: bool) -> dict:
        return variant_options(self, sfx, grads)

    def _add_option_grads(self, sfx: str, options: dict) -> None:
        add_layer_norm_grads(self, sfx, options)

    @property
    def _norm_width(self) -> int:
        return 9 * self.hidden_size + 3 if self.layer_norm else 0

    def forward(self, x, hx=None, lengths=None):
        """Run the LSTM over whole sequences.

        Parameters
        ----------
        x : array_like, (T, N, I), or (N, T, I) with `batch_first`, or unbatched (T, I)
            The input sequences; float32 or float64 (converted to the model's dtype).
        hx : tuple (h0, c0) or None
            Initial states, (D·num_layers, N, P) and (D·num_layers, N, H)
            ((D·num_layers, ·) unbatched; P = H without a projection), the index being
            layer·D + direction. None means zeros.
        lengths : array_like of int, (N,), or None
            The valid steps of each sequence, in 1..T and in any order. Outputs past a
            sequence's length are zero; its h_n, c_n are the states at its last valid
            step; the reverse direction starts at that step. As PyTorch's
            `pack_padded_sequence(..., enforce_sorted=False)`.

        Returns
        -------
        out : numpy.ndarray, (T, N, D·P), or (N, T, D·P) with `batch_first`, or (T, D·P)
            The last layer's hidden state at every step, the reverse direction after the
            forward one.
        (h_n, c_n) : tuple of numpy.ndarray, (D·num_layers, N, P) and (D·num_layers, N, H)
            The final states of every layer and direction.
        """
        return self._forward(x, hx, lengths)

    def backward(self, dout, dhx=None, *, input_grad: bool = True):
        """Back-propagate through time through the last `forward`, adding into `grads`.

        Each training-mode forward can be back-propagated once.

        Parameters
        ----------
        dout : array_like, the shape of forward's `out`
            Gradient of the loss with respect to `out`. Values at padded steps (past a
            sequence's length) are ignored.
        dhx : tuple (dh_n, dc_n) or None
            Gradients with respect to forward's h_n and c_n, of their shapes; None means
            none flows in from them. Chaining these across chunks of a long
            sequence is truncated BPTT.
        input_grad : bool, default True
            Whether to compute the gradient with respect to x. False skips that work and
            returns None for it: the usual case for a first layer fed with data.

        Returns
        -------
        dx : numpy.ndarray or None
            Gradient with respect to x, of x's shape (zero at padded steps).
        (dh0, dc0) : tuple of numpy.ndarray
            Gradients with respect to the initial states, each of hx's shape.

        Raises
        ------
        RuntimeError
            In eval mode, with no training-mode forward left to back-propagate, or when
            another thread trains the model (see `lstm_native.module`).
        """
        return self._backward(dout, dhx, "dhx", input_grad)


#: The layer norm's parameters of a layer and direction, in the kernels' order (18H
#: values: γ_ih, β_ih, γ_hh, β_hh of 4H, γ_c, β_c of H).
LAYER_NORM_NAMES = ("weight_ln_ih", "bias_ln_ih", "weight_ln_hh", "bias_ln_hh", "weight_ln_c",
                    "bias_ln_c")


def check_layer_norm(layer_norm, peepholes: bool, clip, input_forget: bool) -> bool:
    """`layer_norm` as a bool; the layer-normalised pass has none of the ONNX variants."""
    if check_bool(layer_norm, "layer_norm") and (peepholes or clip is not None
                                                 or input_forget):
        raise ValueError("layer_norm=True does not combine with peepholes, clip or "
                         "input_forget (the layer-normalised LSTM has none of them)")
    return layer_norm


def variant_shapes(H: int, peepholes: bool, layer_norm: bool) -> dict:
    """The parameters the variants add to a layer and direction (or a cell) of H hidden
    units, name without suffix -> shape."""
    shapes = {}
    if peepholes:
        shapes["weight_peephole"] = (3, H)
    if layer_norm:
        shapes.update({name: (H,) if name.endswith("_c") else (4 * H,)
                       for name in LAYER_NORM_NAMES})
    return shapes


def add_layer_norm_grads(module, sfx: str, options: dict) -> None:
    """Split the kernels' dlayer_norm (18H) into the layer norm's gradients."""
    if "dlayer_norm" in options:
        start = 0
        for name in LAYER_NORM_NAMES:
            grad = module.grads[f"{name}{sfx}"]
            grad += options["dlayer_norm"][start:start + grad.size]
            start += grad.size


def variant_options(module, sfx: str, grads: bool) -> dict:
    """The kernels' keyword arguments for the variants of an `LSTM`'s layer and direction
    of suffix `sfx` (or an `LSTMCell`'s, sfx ""): peephole, clip, input_forget and the
    layer norm's parameters, and with `grads` the peepholes' gradient buffer and one for
    the layer norm's (`add_layer_norm_grads` adds it into `grads`)."""
    options = {}
    if module.layer_norm:
        options["layer_norm"] = np.concatenate(
            [module._params[f"{name}{sfx}"] for name in LAYER_NORM_NAMES])
        if grads:
            options["dlayer_norm"] = np.zeros_like(options["layer_norm"])
    if module.peepholes:
        options["peephole"] = module._params[f"weight_peephole{sfx}"]
        if grads:
            options["dpeephole"] = module.grads[f"weight_peephole{sfx}"]
    if module.clip is not None:
        options["clip"] = module.clip
    if module.input_forget:
        options["input_forget"] = True
    return options


class LSTMCell(_Cell):
    """One LSTM step, as `torch.nn.LSTMCell`: what streaming inference runs.

    Parameters
    ----------
    input_size : int
        Features of the input, I, in 1..2**20.
    hidden_size : int
        Features of the hidden and cell states, H, in 1..2**20.
    bias : bool, default True
        Whether the cell has `bias_ih` and `bias_hh`.
    device : None, "cpu" or torch.device("cpu")
        As torch's: the kernels run on the CPU; any other device is a ValueError.
    dtype : np.float32, np.float64, their names, or torch.float32 / torch.float64
        Default float32. The arguments up to here are torch's, in its order; the rest
        are keyword-only.
    init : {"torch", "keras"}, default "torch"
        torch's U(-1/sqrt(H), 1/sqrt(H)) initialisation, or Keras' (as `LSTM`'s).
    unit_forget_bias : bool, default False
        Start the forget gate's bias at 1 (as `LSTM`'s; needs `bias`).
    peepholes, clip, input_forget, layer_norm
        The variants of `LSTM`, the same equations; the peepholes are `weight_peephole`
        (3, H), the layer norm's parameters `weight_ln_ih` ... `bias_ln_c`.
    seed : int, numpy Generator or None
        Seed of the initialisation; an int >= 0.
    n_threads : int or None
        OpenMP threads (they split the batch), in 1..1024, used up to the cores the
        process may run on; None as in `LSTM`.

    Notes
    -----
    Parameters are `weight_ih` (4H, I), `weight_hh` (4H, H), `bias_ih`, `bias_hh` (4H,),
    gates in the order input, forget, candidate, output, as PyTorch.

    Limits and threads as `LSTM`: at most 2**31 - 1 parameters and 2**30 rows N per
    step; float64 inputs must fit a float32 model's range, nan and inf propagate;
    inference may run in many threads at once, training in one at a time.

    Examples
    --------
    Streaming: one step at a time, each from the state the last one returned.

    >>> import numpy as np
    >>> from lstm_native import LSTM, LSTMCell
    >>> cell = LSTMCell(input_size=3, hidden_size=5, seed=0).eval()
    >>> x = np.random.default_rng(0).standard_normal((7, 2, 3))   # (T, N, I)
    >>> state = None
    >>> for x_t in x:
    ...     state = cell(x_t, state)
    >>> h, c = state
    >>> h.shape, c.shape
    ((2, 5), (2, 5))

    The same weights in an `LSTM` give the same final state over the whole sequence.

    >>> lstm = LSTM(3, 5).eval()
    >>> lstm.load_state_dict({f"{name}_l0": w for name, w in cell.state_dict().items()})
    >>> out, (h_n, c_n) = lstm(x)
    >>> bool(np.allclose(h_n[0], h, atol=1e-5))
    True
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=np.float32, *, init: str = "torch", unit_forget_bias: bool = False,
                 peepholes: bool = False, clip: float | None = None,
                 input_forget: bool = False, layer_norm: bool = False,
                 seed: int | None = None, n_threads: int | None = None):
        check_device(device)
        super().__init__(check_model_dtype(dtype))
        self.input_size = check_size(input_size, "input_size", maximum=MAX_FEATURES)
        self.hidden_size = check_size(hidden_size, "hidden_size", maximum=MAX_FEATURES)
        self.bias = check_bool(bias, "bias")
        self.init = check_init(init)
        self.unit_forget_bias = check_unit_forget_bias(unit_forget_bias, self.bias)
        self.peepholes = check_bool(peepholes, "peepholes")
        self.clip = check_clip(clip)
        self.input_forget = check_bool(input_forget, "input_forget")
        self.layer_norm = check_layer_norm(layer_norm, self.peepholes, self.clip,
                                           self.input_forget)
        self.n_threads = check_n_threads(n_threads)
        H = self.hidden_size
        extra = variant_shapes(H, self.peepholes, self.layer_norm)
        check_parameter_count(4 * H * (self.input_size + H + 2 * self.bias)
                              + sum(int(np.prod(shape)) for shape in extra.values()),
                              "input_size and hidden_size")
        rng = np.random.default_rng(check_seed(seed))
        shapes = {"weight_ih": (4 * H, self.input_size), "weight_hh": (4 * H, H)}
        if self.bias:
            shapes.update(bias_ih=(4 * H,), bias_hh=(4 * H,))
        shapes.update(extra)
        add_initial_parameters(self, rng, shapes, self.init, self.unit_forget_bias)

    def get_config(self) -> dict:
        """The constructor's arguments (but the seed) as a JSON-ready dict."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "bias": self.bias, "init": self.init, "unit_forget_bias": self.unit_forget_bias,
                "peepholes": self.peepholes, "clip": self.clip,
                "input_forget": self.input_forget, "layer_norm": self.layer_norm,
                "dtype": self.dtype.name, "n_threads": self.n_threads}

    def __repr__(self) -> str:
        extra = ("" if self.bias else ", bias=False") + \
            ("" if self.init == "torch" else f", init={self.init!r}") + \
            (", unit_forget_bias=True" if self.unit_forget_bias else "") + \
            (", peepholes=True" if self.peepholes else "") + \
            ("" if self.clip is None else f", clip={self.clip!r}") + \
            (", input_forget=True" if self.input_forget else "") + \
            (", layer_norm=True" if self.layer_norm else "")
        return f"LSTMCell({self.input_size}, {self.hidden_size}{extra}, dtype={self.dtype.name})"

    def _check_pair(self, pair, name: str, N: int, batched: bool):
        H = self.hidden_size
        shape, expected = self._state_shape(N, batched)
        if pair is None:
            return np.zeros((N, H), self.dtype), np.zeros((N, H), self.dtype)
        h, c = check_state_pair(pair, name, ((shape, expected),) * 2, self.dtype)
        return h.reshape(N, H), c.reshape(N, H)

    @one_thread_in_training
    def forward(self, x, hx=None):
        """One step.

        Parameters
        ----------
        x : array_like, (N, I) or unbatched (I,)
            float32 or float64 (converted to the model's dtype), any memory layout.
        hx : tuple (h, c) or None
            The previous states, each (N, H) ((H,) unbatched); None means zeros.

        Returns
        -------
        (h, c) : tuple of numpy.ndarray, each (N, H) ((H,) unbatched)
            The new hidden and cell states.
        """
        x, batched = self._check_step_input(x)
        N, H = x.shape[0], self.hidden_size
        h_prev, c_prev = self._check_pair(hx, "hx", N, batched)
        bias = (self._params["bias_ih"] + self._params["bias_hh"] if self.bias
                else np.zeros(4 * H, self.dtype))
        lengths = np.ones(N, np.int64)
        gates = np.empty((N, 4 * H), self.dtype)
        # Two slots, as a one-step sequence in training: the previous and the new state.
        h = np.concatenate([h_prev, np.empty_like(h_prev)])
        c = np.concatenate([c_prev, np.empty_like(c_prev)])
        out = np.empty((N, H), self.dtype)
        norm = np.empty((N, 9 * H + 3), self.dtype) if self.layer_norm else None
        with single_threaded_blas():
            _recurrent.forward_layer(_recurrent.Cell.LSTM, x, self._params["weight_ih"],
                                     self._params["weight_hh"], None, bias, None, lengths, gates,
                                     None, h, c, out, 0, False, True,
                                     effective_n_threads(self.n_threads), norm=norm,
                                     **variant_options(self, "", False))
        h_new, c_new = h[N:].copy(), c[N:].copy()
        if self.training:
            self._keep_for_backward((x, lengths, gates, norm, h, c, batched))
        if not batched:
            return h_new[0], c_new[0]
        return h_new, c_new

    @one_thread_in_training
    def backward(self, dh, dc=None):
        """Back-propagate through the last step, adding into `grads`.

        Parameters
        ----------
        dh, dc : array_like, each the shape of forward's h
            Gradients with respect to the new hidden and cell states; dc None means zero.

        Returns
        -------
        dx : numpy.ndarray
            Gradient with respect to x.
        (dh_prev, dc_prev) : tuple of numpy.ndarray
            Gradients with respect to the previous states.

        Raises
        ------
        RuntimeError
            In eval mode, with no training-mode forward left to back-propagate, or when
            another thread trains the cell (see `lstm_native.module`).
        """
        x, lengths, gates, norm, h, c, batched = self._cache_for_backward()
        N, H = x.shape[0], self.hidden_size
        shape, expected = self._state_shape(N, batched)
        dh_next = check_state(dh, "dh", shape, expected, self.dtype).reshape(N, H)
        if dc is None:
            dc_next = np.zeros((N, H), self.dtype)
        else:
            dc_next = check_state(dc, "dc", shape, expected, self.dtype).reshape(N, H)
        self._cache = None
        dx = np.zeros_like(x)
        db = np.zeros(4 * H, self.dtype) if self.bias else None
        no_output_grad = np.zeros((N, H), self.dtype)
        options = variant_options(self, "", True)
        with single_threaded_blas():
            _recurrent.backward_layer(_recurrent.Cell.LSTM, x, self._params["weight_ih"],
                                      self._params["weight_hh"], None, lengths, gates, None,
                                      None, h, c, no_output_grad, 0, dh_next, dc_next,
                                      self.grads["weight_ih"], self.grads["weight_hh"], None, db,
                                      None, dx, False, effective_n_threads(self.n_threads),
                                      norm=norm, **options)
        add_layer_norm_grads(self, "", options)
        if self.bias:
            self.grads["bias_ih"] += db
            self.grads["bias_hh"] += db
        if not batched:
            return dx[0], (dh_next[0], dc_next[0])
        return dx, (dh_next, dc_next)
