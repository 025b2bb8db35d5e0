"""Keras 3 models in and out: `from_keras` and `to_keras`.

The layers are the same equations as Keras' (Keras' `LSTM`, `GRU` with either
`reset_after`, `SimpleRNN` with tanh or ReLU, `Bidirectional` with the "concat" merge);
what differs is how the weights are laid out, which is all this module converts:

- Keras keeps a (I, G·H) `kernel` and a (H, G·H) `recurrent_kernel`, gate blocks along
  the columns; ours are their transposes, `weight_ih_l{k}` (G·H, I) and `weight_hh_l{k}`
  (G·H, H).
- LSTM gates: Keras i, f, c, o and torch's i, f, g, o are the same order (c is g). Keras
  has one `bias` (4H,): ours is b_ih + b_hh, so from Keras it goes to `bias_ih` and
  `bias_hh` is zero.
- GRU gates: Keras z, r, h; torch r, z, n (h is n): the first two blocks swap. With
  `reset_after=True` (torch's GRU) Keras' `bias` is (2, 3H): row 0 the input bias
  (`bias_ih`), row 1 the recurrent bias (`bias_hh`). With `reset_after=False` it is one
  (3H,) bias (`bias_ih`, `bias_hh` zero), our `GRU(reset_after=False)`.
- SimpleRNN: `kernel` (I, H), `recurrent_kernel` (H, H), one `bias` (H,).

Keras' layers are batch-major: the layers `from_keras` builds have `batch_first=True`,
and the Keras models `to_keras` builds take (N, T, I) whatever the model's `batch_first`.
Keras' `dropout` and `recurrent_dropout` are our `input_dropout` and
`recurrent_dropout`; our `dropout` between stacked layers is a Keras `Dropout` layer
between them. Neither changes inference.

Keras is imported on first use, not with this module; it needs a backend that is
installed (torch or JAX: ``KERAS_BACKEND=torch``; Keras' default is TensorFlow) chosen
before Keras is first imported.
"""
from __future__ import annotations

import numpy as np

from .gru import GRU
from .layers import Dropout, LastStep, Linear, Sequential
from .lstm import LSTM
from .module import Module
from .rnn import RNN

__all__ = ["from_keras", "to_keras"]

#: For each of our gate blocks, the index of Keras' block: LSTM i, f, g, o <- i, f, c, o;
#: GRU r, z, n <- z, r, h. Both are their own inverse.
_GATE_ORDER = {LSTM: (0, 1, 2, 3), GRU: (1, 0, 2), RNN: (0,)}

#: Our LSTM's options that Keras' LSTM has no counterpart for, with their off values.
_LSTM_ONLY_HERE = {"proj_size": 0, "peepholes": False, "clip": None, "input_forget": False,
                   "layer_norm": False}

_DTYPES = ("float32", "float64")


def _keras():
    """Keras, imported on first use: importing this module needs neither Keras nor its
    backend."""
    try:
        import keras
    except ImportError as e:
        raise ImportError("lstm_native.keras needs Keras 3 (pip install "
                          "'lstm_native[keras]') and a backend for it that is installed, "
                          "such as torch with KERAS_BACKEND=torch set before Keras is "
                          f"imported: {e}") from e
    return keras


def _keras_recurrent_classes() -> tuple:
    """Keras' recurrent layers that convert (alone or in a Bidirectional)."""
    keras = _keras()
    return keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN


def _gate_order(cls) -> tuple:
    """`_GATE_ORDER` of our layer class `cls` or a subclass of one."""
    return next(order for base, order in _GATE_ORDER.items() if issubclass(cls, base))


def _reorder(a: np.ndarray, order: tuple, axis: int) -> np.ndarray:
    """`a` with its gate blocks along `axis` taken in `order`."""
    blocks = np.split(a, len(order), axis=axis)
    return np.concatenate([blocks[i] for i in order], axis=axis)


def _activation_name(fn) -> str:
    """The name Keras registers `fn` under, among those our layers can run."""
    keras = _keras()
    for name in ("tanh", "sigmoid", "relu", "linear"):
        if fn is keras.activations.get(name):
            return name
    return getattr(fn, "__name__", repr(fn))


def _dtype(layer) -> str:
    """The one float dtype a Keras layer keeps its weights and computes in."""
    policy = layer.dtype_policy
    if policy.variable_dtype != policy.compute_dtype or policy.compute_dtype not in _DTYPES:
        raise ValueError(f"Keras layer {layer.name!r} has dtype policy {policy.name!r}: "
                         f"only 'float32' and 'float64' convert (one dtype for weights "
                         f"and computation)")
    return policy.compute_dtype


def _numpy(variable) -> np.ndarray:
    """A Keras variable's value as our own NumPy array."""
    keras = _keras()
    return np.array(keras.ops.convert_to_numpy(variable))


def _check_built(layer) -> None:
    """ValueError for a Keras layer without weights yet."""
    if not layer.built:
        raise ValueError(f"Keras layer {layer.name!r} is not built, so it has no weights "
                         f"yet: call it on data or build(input_shape) first")


# -- from Keras ---------------------------------------------------------------------------

class _Spec:
    """One Keras recurrent layer (or Bidirectional) as our layer's arguments: the class,
    its constructor options, the input size, and each direction's weights under our names
    without the layer suffix; plus how Keras was told to return them."""

    def __init__(self, cls, options: dict, input_size: int, directions: list,
                 return_sequences: bool, return_state: bool, stateful: bool, name: str):
        self.cls, self.options, self.input_size = cls, options, input_size
        self.directions = directions
        self.return_sequences, self.return_state = return_sequences, return_state
        self.stateful, self.name = stateful, name
        self.hidden_size = directions[0]["weight_hh"].shape[1]

    def stacks_on(self, below: _Spec) -> bool:
        """Whether this layer can be the next layer of `below` in one of our layers:
        the same kind and options, fed with all of `below`'s steps."""
        return (self.cls is below.cls and self.options == below.options
                and self.hidden_size == below.hidden_size
                and len(self.directions) == len(below.directions)
                and below.return_sequences and not below.return_state
                and self.stateful == below.stateful)


def _cell_spec(layer, in_bidirectional: bool) -> _Spec:
    """A Keras LSTM, GRU or SimpleRNN as a one-direction `_Spec`."""
    keras = _keras()
    _check_built(layer)
    name, cell = layer.name, layer.cell
    if layer.go_backwards and not in_bidirectional:
        raise ValueError(f"Keras layer {name!r} has go_backwards=True: our layers run a "
                         f"sequence backwards only as the reverse direction of a "
                         f"bidirectional layer (keras.layers.Bidirectional)")
    activation = _activation_name(cell.activation)
    options = {"bias": bool(cell.use_bias), "input_dropout": float(cell.dropout),
               "recurrent_dropout": float(cell.recurrent_dropout),
               "dtype": _dtype(layer)}
    if isinstance(layer, keras.layers.SimpleRNN):
        cls = RNN
        if activation not in ("tanh", "relu"):
            raise ValueError(f"Keras SimpleRNN {name!r} has activation {activation!r}: "
                             f"our RNN runs 'tanh' or 'relu'")
        options["nonlinearity"] = activation
    else:
        cls = LSTM if isinstance(layer, keras.layers.LSTM) else GRU
        recurrent_activation = _activation_name(cell.recurrent_activation)
        if (activation, recurrent_activation) != ("tanh", "sigmoid"):
            raise ValueError(f"Keras {cls.__name__} {name!r} has activation={activation!r}, "
                             f"recurrent_activation={recurrent_activation!r}: our "
                             f"{cls.__name__} runs 'tanh' and 'sigmoid'")
        if cls is LSTM:
            # Only an initialiser, but kept so that the layer's config says it.
            options["unit_forget_bias"] = bool(cell.unit_forget_bias and cell.use_bias)
        else:
            options["reset_after"] = bool(cell.reset_after)
    order = _gate_order(cls)
    kernel, recurrent = _numpy(cell.kernel), _numpy(cell.recurrent_kernel)
    weights = {"weight_ih": _reorder(kernel.T, order, 0),
               "weight_hh": _reorder(recurrent.T, order, 0)}
    if cell.use_bias:
        bias = _numpy(cell.bias)
        if bias.ndim == 2:  # the GRU's (2, 3H) with reset_after: input, recurrent
            weights["bias_ih"], weights["bias_hh"] = (_reorder(b, order, 0) for b in bias)
        else:
            weights["bias_ih"] = _reorder(bias, order, 0)
            weights["bias_hh"] = np.zeros_like(bias)
    return _Spec(cls, options, kernel.shape[0], [weights], layer.return_sequences,
                 layer.return_state, layer.stateful, name)


def _recurrent_spec(layer) -> _Spec:
    """A Keras LSTM, GRU, SimpleRNN or Bidirectional of one as a `_Spec`."""
    keras = _keras()
    if not isinstance(layer, keras.layers.Bidirectional):
        return _cell_spec(layer, in_bidirectional=False)
    _check_built(layer)
    if layer.merge_mode != "concat":
        raise ValueError(f"Keras Bidirectional {layer.name!r} has merge_mode="
                         f"{layer.merge_mode!r}: our bidirectional layers concatenate the "
                         f"directions (merge_mode='concat')")
    if not isinstance(layer.forward_layer, _keras_recurrent_classes()):
        raise TypeError(f"Keras Bidirectional {layer.name!r} wraps a "
                        f"{type(layer.forward_layer).__name__}: only LSTM, GRU and "
                        f"SimpleRNN convert")
    forward = _cell_spec(layer.forward_layer, in_bidirectional=True)
    backward = _cell_spec(layer.backward_layer, in_bidirectional=True)
    if backward.cls is not forward.cls or backward.options != forward.options:
        raise ValueError(f"Keras Bidirectional {layer.name!r} has a backward layer unlike "
                         f"its forward layer: the directions of our bidirectional layers "
                         f"share one configuration")
    return _Spec(forward.cls, forward.options, forward.input_size,
                 forward.directions + backward.directions, layer.return_sequences,
                 layer.return_state, forward.stateful, layer.name)


def _build_recurrent(specs: list) -> Module:
    """Our layer (batch_first) of the stacked `specs`, one per layer, their weights."""
    first = specs[0]
    module = first.cls(first.input_size, first.hidden_size, num_layers=len(specs),
                       batch_first=True, bidirectional=len(first.directions) == 2,
                       init="keras", **first.options)
    state = {}
    for k, spec in enumerate(specs):
        for direction, weights in enumerate(spec.directions):
            suffix = f"_l{k}" + ("_reverse" if direction else "")
            state.update({name + suffix: value for name, value in weights.items()})
    module.load_state_dict(state)
    return module


def _dense(layer) -> Linear:
    """A Keras Dense with the linear activation as our Linear: weight = kernelᵀ."""
    _check_built(layer)
    activation = _activation_name(layer.activation)
    if activation != "linear":
        raise ValueError(f"Keras Dense {layer.name!r} has activation {activation!r}: "
                         f"only the linear activation maps to our Linear")
    kernel = _numpy(layer.kernel)
    linear = Linear(kernel.shape[0], kernel.shape[1], bias=layer.use_bias,
                    dtype=_dtype(layer))
    state = {"weight": kernel.T}
    if layer.use_bias:
        state["bias"] = _numpy(layer.bias)
    linear.load_state_dict(state)
    return linear


def _dropout(layer) -> Dropout:
    """A Keras Dropout as ours (both the identity in inference)."""
    if layer.noise_shape is not None:
        raise ValueError(f"Keras Dropout {layer.name!r} has noise_shape="
                         f"{layer.noise_shape!r}: our Dropout draws every element")
    return Dropout(float(layer.rate))


def _from_sequential(model) -> Sequential:
    """A keras.Sequential as our Sequential; consecutive recurrent layers of one kind and
    configuration become one stacked layer."""
    keras = _keras()
    layers, stack, stateful = [], [], set()

    def close_stack():
        if stack:
            layers.append(_build_recurrent(stack))
            stack.clear()

    for layer in model.layers:
        if isinstance(layer, keras.layers.Masking):
            # Our models take the valid steps as `lengths` (see from_keras's Notes).
            continue
        if isinstance(layer, _keras_recurrent_classes() + (keras.layers.Bidirectional,)):
            spec = _recurrent_spec(layer)
            if spec.return_state:
                raise ValueError(f"Keras layer {spec.name!r} has return_state=True: in a "
                                 f"Sequential only its output goes on")
            stateful.add(spec.stateful)
            if stack and not spec.stacks_on(stack[-1]):
                close_stack()
            stack.append(spec)
            if not spec.return_sequences:
                close_stack()
                layers.append(LastStep(batch_first=True,
                                       bidirectional=len(spec.directions) == 2))
            continue
        close_stack()
        if isinstance(layer, keras.layers.Dense):
            layers.append(_dense(layer))
        elif isinstance(layer, keras.layers.Dropout):
            layers.append(_dropout(layer))
        else:
            raise TypeError(f"Keras layer {layer.name!r} ({type(layer).__name__}) has no "
                            f"counterpart here: a Sequential converts with LSTM, GRU, "
                            f"SimpleRNN, Bidirectional, Dense, Dropout and Masking layers")
    close_stack()
    if not layers:
        raise ValueError(f"Keras model {model.name!r} has no layers to convert")
    if len(stateful) > 1:
        raise ValueError(f"Keras model {model.name!r} mixes stateful and stateless "
                         f"recurrent layers: our Sequential carries the states of all "
                         f"of them or of none")
    return Sequential(*layers, stateful=stateful == {True})


def from_keras(layer_or_model):
    """Our layer or model with the weights of a Keras one, computing the same numbers.

    Parameters
    ----------
    layer_or_model : keras.layers.Layer or keras.Sequential
        A built Keras `LSTM`, `GRU`, `SimpleRNN`, `Bidirectional` of one of them
        (merge_mode "concat"), `Dense` (linear activation) or `Dropout`, or a
        `keras.Sequential` of those and `Masking`, in float32 or float64.

    Returns
    -------
    Module
        A recurrent layer becomes our `LSTM`, `GRU` (with Keras' `reset_after`) or `RNN`
        (the nonlinearity of Keras' `activation`), one layer, `batch_first=True`,
        bidirectional for a `Bidirectional`, with Keras' `dropout` and
        `recurrent_dropout` as `input_dropout` and `recurrent_dropout`. It returns every
        step and the final state, whatever Keras' `return_sequences` and
        `return_state`: Keras' output with return_sequences=False is ``out[:, -1]``
        (for a `Bidirectional`, ``LastStep(batch_first=True, bidirectional=True)(out)``:
        the reverse direction ends at step 0), its states are ``h_n[0]`` (and
        ``c_n[0]``), for a `Bidirectional` the forward direction's then the reverse's,
        ``h_n[0]``, ``h_n[1]``. A `Dense` becomes a
        `Linear`, a `Dropout` a `Dropout`. A Sequential becomes a `Sequential`:
        consecutive recurrent layers of one kind, size and configuration are one
        stacked layer (`num_layers`), a layer with return_sequences=False is followed
        by `LastStep`, `Masking` is dropped, and stateful layers make a stateful
        Sequential.

    Raises
    ------
    TypeError
        For another kind of layer or model (a functional model, for one).
    ValueError
        For a layer that is not built, a configuration our layers do not compute (an
        activation other than tanh and sigmoid for the LSTM and GRU, other than tanh or
        ReLU for SimpleRNN; `go_backwards` outside a Bidirectional; another merge mode;
        a Bidirectional whose directions differ; a Dense with an activation; a Dropout
        with a noise shape; a mixed-precision or other dtype policy), `return_state`
        inside a Sequential, or a Sequential mixing stateful and stateless layers.

    Notes
    -----
    Masks: Keras masks steps (a `Masking` layer, ``mask=``) where we take `lengths`,
    the valid steps of right-padded sequences; a Keras mask converts when it is right
    padding, to ``lengths = mask.sum(axis=1)``. At a masked step Keras carries the
    previous output and state on (``zero_output_for_mask`` makes that output zero,
    and `Bidirectional` sets it), where our output is zero; the outputs at valid steps,
    the last valid output (return_sequences=False, `LastStep`) and the final states
    are the same.

    Keras' regularizers, constraints, `unroll` and `use_cudnn` are about training or
    speed, not the numbers, and are not carried over. In training mode the dropout
    masks are drawn differently: with `recurrent_dropout`, Keras 3 draws one mask per
    gate for the input and the state, where ours are shared by the gates.

    Examples
    --------
    The examples need Keras and a backend, so the package's own doctest run skips them
    (tests/test_keras.py runs them):

    >>> import os                                                   # doctest: +SKIP
    >>> _ = os.environ.setdefault("KERAS_BACKEND", "torch")         # doctest: +SKIP
    >>> import keras, numpy as np                                   # doctest: +SKIP
    >>> from lstm_native.keras import from_keras                    # doctest: +SKIP
    >>> k = keras.Sequential([keras.Input((None, 3)), keras.layers.Masking(0.0),
    ...                       keras.layers.LSTM(8), keras.layers.Dense(1)])  # doctest: +SKIP
    >>> model = from_keras(k)      # LSTM(batch_first=True), LastStep, Linear  # doctest: +SKIP
    >>> x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)  # doctest: +SKIP
    >>> x[1, 3:] = 0.0             # sequence 1 is 3 steps long, padded  # doctest: +SKIP
    >>> ours = model(x, lengths=[5, 3])                             # doctest: +SKIP
    >>> bool(np.allclose(ours, keras.ops.convert_to_numpy(k(x)), atol=1e-5))  # doctest: +SKIP
    True
    """
    keras = _keras()
    if isinstance(layer_or_model, keras.Sequential):
        return _from_sequential(layer_or_model)
    if isinstance(layer_or_model, keras.Model):
        raise TypeError(f"Keras model {layer_or_model.name!r} is a "
                        f"{type(layer_or_model).__name__}: only keras.Sequential models "
                        f"and single layers convert")
    if isinstance(layer_or_model, _keras_recurrent_classes() + (keras.layers.Bidirectional,)):
        return _build_recurrent([_recurrent_spec(layer_or_model)])
    if isinstance(layer_or_model, keras.layers.Dense):
        return _dense(layer_or_model)
    if isinstance(layer_or_model, keras.layers.Dropout):
        return _dropout(layer_or_model)
    raise TypeError(f"layer_or_model must be a Keras LSTM, GRU, SimpleRNN, Bidirectional, "
                    f"Dense or Dropout layer or a keras.Sequential of them, got "
                    f"{type(layer_or_model).__name__}")


# -- to Keras -----------------------------------------------------------------------------

def _check_mappable(module) -> None:
    """ValueError for the options of our recurrent layers Keras has no counterpart for."""
    if isinstance(module, LSTM):
        for option, off in _LSTM_ONLY_HERE.items():
            value = getattr(module, option)
            if value != off:
                raise ValueError(f"LSTM has {option}={value!r}: Keras' LSTM has no "
                                 f"{option} (only {option}={off!r} converts)")


def _keras_cell_weights(module, layer: int, direction: int) -> list:
    """The Keras cell's [kernel, recurrent_kernel(, bias)] of one of our layers and
    directions."""
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    params = module.parameters()
    order = _gate_order(type(module))
    weights = [_reorder(params["weight_ih" + suffix], order, 0).T,
               _reorder(params["weight_hh" + suffix], order, 0).T]
    if module.bias:
        b_ih, b_hh = params["bias_ih" + suffix], params["bias_hh" + suffix]
        if isinstance(module, GRU) and module.reset_after:
            weights.append(np.stack([_reorder(b_ih, order, 0), _reorder(b_hh, order, 0)]))
        else:
            # Every other bias enters its gate as b_ih + b_hh.
            weights.append(_reorder(b_ih + b_hh, order, 0))
    return [np.ascontiguousarray(w) for w in weights]


def _keras_recurrent(module, return_sequences: bool, return_state: bool) -> list:
    """Keras layers (built, with our weights) of one of our recurrent layers: one per
    layer, every step's output between them, Keras `Dropout` layers for our `dropout`;
    the last returns `return_sequences` and `return_state`."""
    keras = _keras()
    _check_mappable(module)
    dtype = np.dtype(module.dtype).name
    if isinstance(module, LSTM):
        make, extra = keras.layers.LSTM, {"unit_forget_bias": module.unit_forget_bias}
    elif isinstance(module, GRU):
        make, extra = keras.layers.GRU, {"reset_after": module.reset_after}
    elif isinstance(module, RNN):
        make, extra = keras.layers.SimpleRNN, {"activation": module.nonlinearity}
    else:
        raise TypeError(f"{type(module).__name__} has no Keras counterpart")
    D, H = module.num_directions, module.hidden_size
    layers = []
    for k in range(module.num_layers):
        last = k == module.num_layers - 1
        rnn = make(H, use_bias=module.bias, dropout=module.input_dropout,
                   recurrent_dropout=module.recurrent_dropout,
                   return_sequences=return_sequences or not last,
                   return_state=return_state and last, dtype=dtype, **extra)
        if D == 2:
            rnn = keras.layers.Bidirectional(rnn, merge_mode="concat", dtype=dtype)
        rnn.build((None, None, module.input_size if k == 0 else D * H))
        cells = ([rnn.forward_layer.cell, rnn.backward_layer.cell] if D == 2
                 else [rnn.cell])
        for direction, cell in enumerate(cells):
            values = _keras_cell_weights(module, k, direction)
            for variable, value in zip(cell.weights, values, strict=True):
                variable.assign(value)
        if k and module.dropout > 0:
            layers.append(keras.layers.Dropout(module.dropout, dtype=dtype))
        layers.append(rnn)
    return layers


def _input_size(layers: list) -> int:
    """The features of a Sequential's input: those of its first layer that says."""
    for layer in layers:
        if getattr(type(layer), "recurrent", False):
            return layer.input_size
        if isinstance(layer, Linear):
            return layer.in_features
    raise ValueError("model has no recurrent or Linear layer, so its input size is "
                     "unknown: nothing to convert")


def _flatten(model: Sequential) -> list:
    """The layers of `model`, nested Sequentials opened."""
    layers = []
    for layer in model.layers:
        layers.extend(_flatten(layer) if isinstance(layer, Sequential) else [layer])
    return layers


def _last_steps(layers: list) -> set:
    """The indices of the recurrent layers whose last valid output a `LastStep` picks
    (after any Dropout): Keras' return_sequences=False."""
    picked = set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, LastStep):
            continue
        j = i - 1
        while j >= 0 and isinstance(layers[j], Dropout):
            j -= 1
        source = layers[j] if j >= 0 else None
        if not getattr(type(source), "recurrent", False) or j in picked:
            raise ValueError(f"layer {i} (LastStep) must follow a recurrent layer (Dropout "
                             f"in between is fine) for Keras' return_sequences=False")
        if layer.bidirectional != source.bidirectional:
            raise ValueError(f"layer {i} (LastStep) has bidirectional="
                             f"{layer.bidirectional} after a layer with bidirectional="
                             f"{source.bidirectional}: Keras' return_sequences=False "
                             f"takes each direction's final output")
        picked.add(j)
    return picked


def _to_sequential(model: Sequential):
    """Our Sequential as a keras.Sequential taking (N, T, I)."""
    keras = _keras()
    if model.stateful:
        raise ValueError("model is stateful: Keras' stateful layers need their batch size "
                         "fixed when built; convert a stateless copy (stateful=False) "
                         "and set Keras' stateful=True on an Input with batch_shape")
    layers = _flatten(model)
    picked = _last_steps(layers)
    dtype = np.dtype(model.dtype).name
    keras_layers = [keras.Input((None, _input_size(layers)), dtype=dtype)]
    for i, layer in enumerate(layers):
        if isinstance(layer, LastStep):
            continue
        keras_layers.extend(_to_keras_layers(layer, i not in picked, False, dtype))
    return keras.Sequential(keras_layers)


def _to_keras_layers(module, return_sequences: bool, return_state: bool,
                     dtype: str | None) -> list:
    """Keras layers, built with our weights, that compute what `module` does; `dtype`:
    the model's, which a block without parameters (Dropout) takes too, else Keras
    would compute it in its default float32."""
    keras = _keras()
    if getattr(type(module), "recurrent", False):
        return _keras_recurrent(module, return_sequences, return_state)
    if isinstance(module, Linear):
        dense = keras.layers.Dense(module.out_features, use_bias=module.bias, dtype=dtype)
        dense.build((None, module.in_features))
        params = module.parameters()
        dense.kernel.assign(np.ascontiguousarray(params["weight"].T))
        if module.bias:
            dense.bias.assign(params["bias"])
        return [dense]
    if isinstance(module, Dropout):
        return [keras.layers.Dropout(module.p, dtype=dtype)]
    if isinstance(module, LastStep):
        raise TypeError("a LastStep alone has no Keras counterpart: convert it in a "
                        "Sequential after its recurrent layer (return_sequences=False)")
    raise TypeError(f"model must be one of our LSTM, GRU, RNN, Linear, Dropout or a "
                    f"Sequential of them and LastStep, got {type(module).__name__}")


def to_keras(model, *, return_sequences: bool = True, return_state: bool = False):
    """A Keras layer or model with our model's weights, computing the same numbers.

    Parameters
    ----------
    model : Module
        Our `LSTM`, `GRU`, `RNN`, `Linear`, `Dropout`, or a `Sequential` of them and
        `LastStep` (nested Sequentials too).
    return_sequences, return_state : bool
        For a recurrent layer alone: Keras' arguments of its (last) layer. By default
        it returns every step's output, as our layer's `out`; with return_state=True
        also the final states, which a stacked layer (num_layers > 1) cannot.

    Returns
    -------
    keras.layers.Layer or keras.Sequential
        A one-layer recurrent layer becomes a built Keras `LSTM`, `GRU` or `SimpleRNN`
        (in `Bidirectional`, merge_mode "concat", when bidirectional); a stacked one a
        keras.Sequential of one such layer per layer, every step's output between
        them and a Keras `Dropout` between them for our `dropout`. `Linear` becomes
        `Dense`, `Dropout` `Dropout`. A `Sequential` becomes a keras.Sequential taking
        (N, T, I) (Keras is batch-major, whatever our layers' `batch_first`), a
        `LastStep` being return_sequences=False on the recurrent layer before it. The
        dtype is the model's (float32 or float64).

    Raises
    ------
    TypeError
        For a block with no Keras counterpart, a `LastStep` alone among them.
    ValueError
        For an option Keras' layers lack: an LSTM's `proj_size`, `peepholes`, `clip`,
        `input_forget` or `layer_norm`; `return_state` with a stacked layer; a
        `LastStep` not after a recurrent layer (or not matching its directions); a
        stateful Sequential (Keras fixes a stateful model's batch size when it is
        built).

    Examples
    --------
    As `from_keras`'s, skipped by the package's own doctest run:

    >>> import os                                                   # doctest: +SKIP
    >>> _ = os.environ.setdefault("KERAS_BACKEND", "torch")         # doctest: +SKIP
    >>> import keras, numpy as np                                   # doctest: +SKIP
    >>> from lstm_native import GRU                                 # doctest: +SKIP
    >>> from lstm_native.keras import to_keras                      # doctest: +SKIP
    >>> gru = GRU(3, 8, batch_first=True, seed=0)                   # doctest: +SKIP
    >>> k = to_keras(gru, return_state=True)  # a Keras GRU, reset_after=True  # doctest: +SKIP
    >>> x = np.random.default_rng(0).standard_normal((4, 10, 3))   # doctest: +SKIP
    >>> out, h_n = gru(x)                                           # doctest: +SKIP
    >>> k_out, k_h = (keras.ops.convert_to_numpy(a)
    ...               for a in k(x.astype(np.float32)))             # doctest: +SKIP
    >>> bool(np.allclose(out, k_out, atol=1e-5)
    ...      and np.allclose(h_n[0], k_h, atol=1e-5))               # doctest: +SKIP
    True
    """
    keras = _keras()
    if isinstance(model, Sequential):
        return _to_sequential(model)
    if not isinstance(model, Module):
        raise TypeError(f"model must be a lstm_native Module, got {type(model).__name__}")
    if getattr(type(model), "recurrent", False) and model.num_layers > 1:
        if return_state:
            raise ValueError(f"{type(model).__name__} has num_layers={model.num_layers}: "
                             f"its Keras counterpart is a keras.Sequential of "
                             f"{model.num_layers} layers, which returns no states "
                             f"(return_state=False)")
        dtype = np.dtype(model.dtype).name
        return keras.Sequential([keras.Input((None, model.input_size), dtype=dtype),
                                 *_keras_recurrent(model, return_sequences, False)])
    dtype = None if model.dtype is None else np.dtype(model.dtype).name
    return _to_keras_layers(model, return_sequences, return_state, dtype)[0]
