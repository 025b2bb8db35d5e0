"""The long-lag experiment behind `python -m lstm_native longlag`: why LSTMs exist.

An Elman RNN (tanh), a GRU and an LSTM of the same hidden size (or any models of
`REGISTRY`, which adds the LSTM's variants) get the same training budget on the adding
problem (`lstm_native.data.adding_problem`) at several sequence lengths T: each sequence
carries two marked values, one in each half, and the target is their sum, so the first
one must be held for between T/2 and T steps. Always answering 1.0 (the expected sum)
scores a mean squared error of 1/6; a model that beats it tenfold (MSE < 1/60) has
learned to remember.

Two diagnostics explain the table:

- `hidden_state_grads`: ∂L/∂h_t at every step t of a one-layer recurrent layer, exactly,
  through the layer's public forward/backward only (see its notes). In the RNN this
  gradient is multiplied by W_hhᵀ·diag(tanh') at every step back, and shrinks
  geometrically. The LSTM's cell path
  c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t and the GRU's h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}
  are additive: the gradient along them is scaled by the forget gate f_t, or the update
  gate z_t, which training can hold near 1. The table and `gradient_profile` measure
  how much of it does reach back.
- `lstm_gates`: the forget, input and output gates of a trained one-layer LSTM along one
  sequence, recomputed from its `state_dict` and hidden states with the reference's gate
  functions (`lstm_native.reference.forget`, `input`, `output`). Those are the plain
  LSTM's equations, so the gates are shown for the plain "lstm" only, not its variants.

Trained models differ from seed to seed, and between SIMD levels of the kernels and BLAS
kernel sets (their float sums round differently; `setting` names those of a run), so the
command runs several seeds on request (`parse_seeds`), and the gradient plot then shows the
median over the seeds with their range.

Nothing imports this module but the command line; the plots need matplotlib.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_info

from . import losses, optim, reference
from ._recurrent import simd_level
from .checkpoint import build_module
from .data import adding_problem
from .gru import GRU
from .layers import LastStep, Linear, Sequential
from .lstm import LSTM
from .rnn import RNN
from .schedules import CosineAnnealingLR
from .training import evaluate, fit

__all__ = ["CELLS", "MSE_FORMAT", "REGISTRY", "SOLVED_MSE", "TRIVIAL_MSE", "Cell",
           "LongLagRun", "adding_data", "build_model", "cell_spec", "gradient_curves",
           "gradient_profile", "gradient_profiles", "hidden_state_grads", "lstm_gates",
           "make_plots", "memory_unit", "parse_cells", "parse_seeds", "plot_gates",
           "plot_gradients", "setting", "spread", "train_model"]


@dataclass(frozen=True)
class Cell:
    """A recurrent layer the experiment can train: its class, the options it gets on top of
    the model's sizes, its label (in the tables, the JSON and the plots' legends) and its
    color in the plots."""
    layer: type
    options: dict
    label: str
    color: str


#: The models the experiment can compare, by their name on the command line (--cells):
#: the three layers at torch's defaults (the RNN's tanh, the GRU's reset_after=True) and
#: the LSTM's variants. Each label is its name in other case, so a label (any case) is
#: also a name.
REGISTRY = {
    "rnn": Cell(RNN, {}, "RNN", "tab:blue"),
    "gru": Cell(GRU, {}, "GRU", "tab:green"),
    "lstm": Cell(LSTM, {}, "LSTM", "tab:orange"),
    "lstm-peephole": Cell(LSTM, {"peepholes": True}, "LSTM-peephole", "tab:red"),
    "lstm-cifg": Cell(LSTM, {"input_forget": True}, "LSTM-CIFG", "tab:purple"),
    # The recurrent connection only: a mask on x_t is held for the whole sequence, so
    # input_dropout=0.1 on the two input features would hide the markers of 10% of the
    # sequences and the values of about 10% more, whose targets then cannot be
    # predicted (label noise, not a regulariser). The memory, c, is never dropped.
    "lstm-vd": Cell(LSTM, {"recurrent_dropout": 0.1}, "LSTM-VD", "tab:brown"),
    "ln-lstm": Cell(LSTM, {"layer_norm": True}, "LN-LSTM", "tab:pink"),
}
#: The labels of the models the command compares by default.
CELLS = ("RNN", "GRU", "LSTM")
#: Var(U1 + U2): the test MSE of always predicting the expected sum 1.0.
TRIVIAL_MSE = 1.0 / 6.0
#: A model counts as having solved a lag when it beats the trivial predictor tenfold.
SOLVED_MSE = TRIVIAL_MSE / 10.0
#: Gradient clipping of every run (the RNN's gradients can explode as well as vanish).
CLIP_NORM = 1.0
N_TEST = 1000
#: How the command line and docs/figures.md print an MSE: two significant digits, for
#: they span 1/6 (the trivial answer's) to 1e-5 (a GRU's at T = 100).
MSE_FORMAT = ".2g"


def adding_data(n_samples: int, seq_len: int, seed: int, part: int):
    """Adding-problem pairs (x (N, T, 2), y (N, 1)) as float32, drawn from a stream of
    its own per (seed, T, part): part 0 trains, part 1 tests."""
    rng = np.random.default_rng([seed, seq_len, part])
    x, y = adding_problem(n_samples, seq_len, seed=rng)
    return x.astype(np.float32), y.astype(np.float32)


def cell_spec(kind: str) -> Cell:
    """The `REGISTRY` entry of `kind`, a name or label in any case.

    Raises
    ------
    ValueError
        If `kind` is neither.
    """
    found = REGISTRY.get(kind.lower()) if isinstance(kind, str) else None
    if found is None:
        raise ValueError(f"kind must be one of {','.join(REGISTRY)} (any case), got {kind!r}")
    return found


def build_model(kind: str, hidden: int, *, seed: int, n_threads: int | None = None,
                dtype=np.float32) -> Sequential:
    """``Sequential(CELL(2, hidden, batch_first=True, **options), LastStep(batch_first=True),
    Linear(hidden, 1))`` with CELL and options those of `kind` (a name or label of
    `REGISTRY`, any case): the model of every run."""
    spec = cell_spec(kind)
    return Sequential(spec.layer(2, hidden, batch_first=True, dtype=dtype, seed=seed,
                                 n_threads=n_threads, **spec.options),
                      LastStep(batch_first=True),
                      Linear(hidden, 1, dtype=dtype, seed=seed + 1))


@dataclass
class LongLagRun:
    """One trained model: its kind, lag, test MSE and what the plots need."""
    kind: str
    seq_len: int
    test_mse: float
    trivial_mse: float              # the trivial predictor's MSE on the same test set
    seconds: float
    loss: list = field(repr=False)  # training loss per epoch
    model: Sequential = field(repr=False)
    initial_state: dict = field(repr=False)  # the weights before training

    @property
    def solved(self) -> bool:
        return self.test_mse < SOLVED_MSE


def train_model(kind: str, seq_len: int, *, hidden: int, samples: int, epochs: int,
                batch_size: int, lr: float, seed: int, n_threads: int | None,
                distributed: bool = False) -> LongLagRun:
    """Train one model on the adding problem with length `seq_len` and test it on
    `N_TEST` fresh sequences. Every model gets the same data, seed and budget: Adam with
    its learning rate annealed from `lr` to 0 over the epochs (cosine: the last epochs
    settle instead of bouncing), MSE, gradients clipped to norm `CLIP_NORM`.
    `distributed`: data-parallel over the MPI ranks (`lstm_native.fit`'s)."""
    x, y = adding_data(samples, seq_len, seed, 0)
    x_test, y_test = adding_data(N_TEST, seq_len, seed, 1)
    model = build_model(kind, hidden, seed=seed, n_threads=n_threads)
    initial_state = model.state_dict()
    optimizer = optim.Adam(model, lr=lr)
    start = time.perf_counter()
    history = fit(model, x, y, loss=losses.MSELoss(), optimizer=optimizer, epochs=epochs,
                  batch_size=batch_size, seed=seed, clip_norm=CLIP_NORM, verbose=0,
                  scheduler=CosineAnnealingLR(optimizer, T_max=epochs),
                  distributed=distributed)
    seconds = time.perf_counter() - start
    test_mse = evaluate(model, x_test, y_test, loss=losses.MSELoss())["loss"]
    trivial = float(np.mean(np.square(y_test.astype(np.float64) - 1.0)))
    return LongLagRun(kind, seq_len, test_mse, trivial, seconds, list(history["loss"]),
                      model, initial_state)


def parse_cells(text: str) -> list[str]:
    """The labels of the cells named in "rnn,gru,lstm,lstm-cifg" (names of `REGISTRY`, any
    case), in the order given: ["RNN", "GRU", "LSTM", "LSTM-CIFG"].

    Raises
    ------
    ValueError
        If a name is not one of `REGISTRY`, is given twice, or none is given.
    """
    parts = [part.strip() for part in text.split(",")]
    allowed = ",".join(REGISTRY)
    names = []
    for part in parts:
        name = part.lower()
        if name not in REGISTRY:
            raise ValueError(f"cells must be comma-separated names among {allowed}, got "
                             f"{part!r} in {text!r}")
        if name in names:
            raise ValueError(f"cells must be each given once (among {allowed}), got "
                             f"{part!r} twice in {text!r}")
        names.append(name)
    return [REGISTRY[name].label for name in names]


def parse_seeds(text: str) -> list[int]:
    """Seeds from "0-4", "0,1,2" or a mix ("0-2,7"): sorted, each once.

    Raises
    ------
    ValueError
        If a part is not an integer >= 0 or a range "a-b" with 0 <= a <= b.
    """
    seeds = set()
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        try:
            lo = int(first)
            hi = int(last) if dash else lo
        except ValueError:
            raise ValueError(f"seeds must be integers >= 0 or ranges a-b, got {text!r}") from None
        if lo < 0 or hi < lo:
            raise ValueError(f"seeds must be integers >= 0 or ranges a-b with a <= b, "
                             f"got {text!r}")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def spread(values) -> tuple[float, float, float]:
    """(median, min, max) of `values`: how a figure over several seeds is reported."""
    values = np.asarray(values, np.float64)
    return float(np.median(values)), float(values.min()), float(values.max())


def setting(n_threads: int | None) -> str:
    """What a trained model depends on besides its seed and sizes, in a few words: the
    kernels' SIMD level, their threads (None: the OpenMP default), and the BLAS they call
    (scipy's, with the kernels OpenBLAS picked for this CPU or OPENBLAS_CORETYPE)."""
    threads = "default threads" if n_threads is None else \
        f"{n_threads} thread{'s' * (n_threads > 1)}"
    parts = [f"SIMD {simd_level()}", threads]
    for lib in threadpool_info():
        folder = os.path.basename(os.path.dirname(lib.get("filepath", "")))
        if lib.get("user_api") == "blas" and "scipy" in folder:
            arch = lib.get("architecture")
            parts.append(f"{lib.get('internal_api')} {lib.get('version')}"
                         + (f" {arch}" if arch else ""))
    if os.environ.get("OPENBLAS_CORETYPE"):
        parts.append(f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}")
    return ", ".join(parts)


# -- ∂L/∂h_t -------------------------------------------------------------------------------

def _as_float64(model: Sequential, state: dict | None = None) -> Sequential:
    """A float64 copy of a Sequential (with `state`, or the model's own weights) without
    dropout: long products of small factors underflow float32 long before they reach
    zero, and the gradient wanted is that of the model as it predicts (in eval mode),
    while a backward needs training mode, where dropout draws masks."""
    config = model.get_config()
    for spec in config["layers"]:
        if "dtype" in spec["config"]:
            spec["config"]["dtype"] = "float64"
        for rate in ("dropout", "input_dropout", "recurrent_dropout"):
            if rate in spec["config"]:
                spec["config"][rate] = 0.0
    copy = build_module({"type": "Sequential", "config": config})
    copy.load_state_dict(model.state_dict() if state is None else state)
    return copy


def hidden_state_grads(layer, x, d_last) -> np.ndarray:
    """∂L/∂h_t for every step t, for a loss L that reads the last step's output only.

    Parameters
    ----------
    layer : RNN, GRU or LSTM
        One layer, one direction, ``batch_first=True``, any of the LSTM's variants but
        without dropout (the backward runs in training mode, where dropout would draw
        masks the forward did not use; `gradient_profile` takes a copy without). Left in
        training mode, with the gradients of L in its `grads`.
    x : array_like, (N, T, I)
        The input sequences.
    d_last : array_like, (N, H)
        ∂L/∂h_{T-1}, the gradient at the last step's output.

    Returns
    -------
    numpy.ndarray, (N, T, H)
        ``[:, t]`` is ∂L/∂h_t, in the layer's dtype.

    Notes
    -----
    The public backward returns only dx and the gradient of the initial state, so the
    sequence is run as T chunks of one step, each starting from the state the previous
    one ended in (``hx`` chaining gives the very same h_t as one forward over the whole
    sequence). Then, from the last step back: step t is run again from its stored
    starting state (a layer back-propagates its latest forward only) and
    back-propagated with ``dout`` = ∂L/∂h_{T-1} at the last step (zero elsewhere) and
    ``dhx`` = the state gradient the chunk after it returned. That chunk's initial-state
    gradient is the total derivative ∂L/∂h_{t-1} (and ∂L/∂c_{t-1} for the LSTM, chained
    on): truncated BPTT with nothing truncated, no kernel changes. It costs 2T one-step
    calls, which is fine for a diagnostic.
    """
    if layer.num_layers != 1 or layer.bidirectional or not layer.batch_first:
        raise ValueError("hidden_state_grads needs a one-layer, one-direction layer with "
                         "batch_first=True")
    if layer.input_dropout or layer.recurrent_dropout:
        raise ValueError(f"hidden_state_grads needs a layer without dropout, got "
                         f"input_dropout={layer.input_dropout}, recurrent_dropout="
                         f"{layer.recurrent_dropout}")
    x = np.asarray(x, layer.dtype)
    N, T, _ = x.shape
    H = layer.hidden_size
    d_last = np.asarray(d_last, layer.dtype).reshape(N, H)

    layer.eval()
    starts = [None]                     # starts[t]: the state entering step t (None: zeros)
    for t in range(T - 1):
        _, state = layer(x[:, t:t + 1], hx=starts[t])
        starts.append(state)

    layer.train()
    grads = np.empty((N, T, H), layer.dtype)
    grads[:, T - 1] = d_last
    dout = np.zeros((N, 1, H), layer.dtype)
    dout[:, 0] = d_last                 # the loss sees the last step's output only
    dstate = None
    for t in range(T - 1, 0, -1):
        layer(x[:, t:t + 1], hx=starts[t])
        _, dstate = layer.backward(dout, dstate, input_grad=False)
        dout[:] = 0
        dh = dstate[0] if isinstance(dstate, tuple) else dstate   # (1, N, H)
        grads[:, t - 1] = dh[0]
    return grads


def gradient_profile(model: Sequential, x, y, state: dict | None = None) -> np.ndarray:
    """How much of the loss gradient reaches each step back, per sequence.

    Parameters
    ----------
    model : Sequential
        ``Sequential(RNN, GRU or LSTM, LastStep, Linear)`` as `build_model` makes (its
        dropout, if any, is left out: the gradient of the model in eval mode).
    x, y : array_like
        Sequences (N, T, I) and targets (N, 1).
    state : dict, optional
        Weights to use instead of the model's own (e.g. those before training).

    Returns
    -------
    numpy.ndarray, (N, T)
        ``[n, k]`` = ‖∂L_n/∂h_{T-1-k}‖ / ‖∂L_n/∂h_{T-1}‖, k steps back from the loss,
        with L_n = (pred_n - y_n)² the loss of sequence n (NaN where ∂L_n/∂pred_n = 0).
        The ratio does not depend on how well the model fits: per sequence, ∂L_n/∂h_t is
        ∂L_n/∂pred_n times ∂pred_n/∂h_t. Computed in float64 on a copy of the model.
    """
    copy = _as_float64(model, state)
    layer, last, head = copy.layers
    copy.train()
    out, _ = layer(np.asarray(x, np.float64))
    pred = head(last(out))
    _, dpred = losses.mse_loss(pred, np.asarray(y, np.float64), reduction="sum")
    d_last = head.backward(dpred)       # ∂L/∂h_{T-1}, (N, H)
    norms = np.linalg.norm(hidden_state_grads(layer, x, d_last), axis=2)   # (N, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = norms / norms[:, -1:]
    return np.where(norms[:, -1:] > 0, ratio, np.nan)[:, ::-1]


# -- the gates of a trained LSTM -----------------------------------------------------------

def lstm_gates(lstm: LSTM, x) -> dict:
    """The forget, input and output gates of a one-layer LSTM along one sequence.

    Parameters
    ----------
    lstm : LSTM
        One layer, one direction, plain: the reference's gate functions are the plain
        LSTM's, so peepholes, a clip, coupled gates (input_forget) or a layer norm are
        refused.
    x : array_like, (T, I)
        One sequence.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"forget", "input", "output"}``, each (T, H) float64 in [0, 1]: the gate at
        step t, computed by the reference's gate functions from the `state_dict` and the
        hidden state h_{t-1} the LSTM itself produced (zeros before step 0).
    """
    if lstm.num_layers != 1 or lstm.bidirectional:
        raise ValueError("lstm_gates needs a one-layer, one-direction LSTM")
    config = lstm.get_config()
    variants = [f"{name}={config[name]!r}" for name in
                ("peepholes", "clip", "input_forget", "layer_norm")
                if config[name] not in (False, None)]
    if variants:
        raise ValueError(f"lstm_gates needs a plain LSTM (the reference's gate functions), "
                         f"got {', '.join(variants)}")
    x = np.asarray(x, np.float64)
    H = lstm.hidden_size
    was_training = lstm.training
    lstm.eval()
    out, _ = lstm(x)                     # unbatched: (T, H)
    lstm.train(was_training)
    h_prev = np.vstack([np.zeros((1, H)), np.asarray(out, np.float64)[:-1]])
    params = {k: v.astype(np.float64) for k, v in lstm.state_dict().items()}
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b = params["bias_ih_l0"] + params["bias_hh_l0"] if lstm.bias else np.zeros(4 * H)
    # PyTorch's row order of the stacked weights: input, forget, candidate, output.
    block = {name: slice(k * H, (k + 1) * H) for k, name in enumerate("ifgo")}

    def gate(fn, name):
        s = block[name]
        return fn(x, h_prev, w_ih[s], w_hh[s], b[s])   # all T steps at once: (T, H)

    return {"forget": gate(reference.forget, "f"), "input": gate(reference.input, "i"),
            "output": gate(reference.output, "o")}


# -- plots ---------------------------------------------------------------------------------

def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_gradients(path: str, curves: dict, seq_len: int, note: str) -> str:
    """How much gradient reaches each step back, log y.

    Parameters
    ----------
    path : str
        The PNG to write.
    curves : dict
        (kind, "trained" or "initial") -> (S, T), kind a label of `REGISTRY`: per seed,
        the median over sequences of `gradient_profile` (as `gradient_curves` gives). The
        line is the median over the S seeds, in the kind's color, the shaded band their
        range (when S > 1).
    seq_len : int
        T.
    note : str
        What the figure depends on (seeds, SIMD level, threads), under the title.
    """
    fig = _figure((7, 5))
    ax = fig.add_subplot()
    k = np.arange(seq_len)
    # The first marker is at a step t < T//2: at distance T - T//2 .. T - 1.
    ax.axvspan(seq_len - seq_len // 2, seq_len - 1, color="gray", alpha=0.1,
               label="where the first marked value is")
    for (kind, when), per_seed in curves.items():
        per_seed = np.asarray(per_seed, np.float64).reshape(-1, seq_len)
        per_seed = np.where(per_seed > 0, per_seed, np.nan)    # log axis
        trained = when == "trained"
        color = cell_spec(kind).color
        ax.plot(k, np.nanmedian(per_seed, axis=0), color=color,
                lw=2 if trained else 1.2, ls="-" if trained else "--",
                alpha=1 if trained else 0.7, label=f"{kind}, {when}")
        if len(per_seed) > 1:
            ax.fill_between(k, np.nanmin(per_seed, axis=0), np.nanmax(per_seed, axis=0),
                            color=color, alpha=0.2 if trained else 0.1, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the loss, T - 1 - t (steps)")
    ax.set_ylabel(r"$\|\partial L/\partial h_t\| \,/\, \|\partial L/\partial h_{T-1}\|$"
                  " (median over sequences)")
    ax.set_title(f"Gradient reaching step t of the adding problem, T = {seq_len}\n{note}",
                 fontsize="medium")
    ax.legend(loc="lower left")
    fig.savefig(path, dpi=100)
    return path


def plot_gates(path: str, gates: dict, x, seq_len: int, note: str) -> str:
    """One sequence's input and the forget, input and output gates as heatmaps; `note`
    (the seed, SIMD level, threads) goes under the title."""
    x = np.asarray(x)
    marks = np.flatnonzero(x[:, 1] > 0.5)
    fig = _figure((9, 7.5))
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[1, 2, 2, 2])
    axes[0].bar(np.arange(seq_len), x[:, 0], width=1.0, color="lightgray")
    axes[0].bar(marks, x[marks, 0], width=1.0, color="black")
    axes[0].set_ylabel("input\n(marked: black)")
    axes[0].set_title(f"Trained LSTM on one sequence (T = {seq_len}); target "
                      f"{x[marks, 0].sum():.2f} = the sum of the two marked values\n{note}",
                      fontsize="medium")
    image = None
    for ax, name in zip(axes[1:], ("forget", "input", "output")):
        image = ax.imshow(gates[name].T, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
                          interpolation="nearest", origin="lower",
                          extent=(-0.5, seq_len - 0.5, -0.5, gates[name].shape[1] - 0.5))
        ax.set_ylabel(f"{name} gate\nunit")
    axes[-1].set_xlabel("step t")
    fig.colorbar(image, ax=axes[1:], label="gate activation", shrink=0.8)
    fig.savefig(path, dpi=100)
    return path


def gradient_profiles(runs: dict, seed: int, n_sequences: int = 256) -> dict:
    """`gradient_profile` of each model, trained and at its initial weights, on the first
    `n_sequences` test sequences of its lag: {(kind, "trained" or "initial"): (N, T)}.

    `runs` maps each kind to its `LongLagRun` (of one lag)."""
    profiles = {}
    for when in ("trained", "initial"):
        for kind, run in runs.items():
            x, y = adding_data(N_TEST, run.seq_len, seed, 1)
            state = None if when == "trained" else run.initial_state
            profiles[(kind, when)] = gradient_profile(run.model, x[:n_sequences],
                                                      y[:n_sequences], state)
    return profiles


def gradient_curves(runs: dict, seed: int, n_sequences: int = 256) -> dict:
    """The median over sequences of each of `gradient_profiles`: {(kind, when): (T,)},
    ``[k]`` the typical fraction of the gradient that reaches k steps back."""
    return {key: np.nanmedian(profile, axis=0)
            for key, profile in gradient_profiles(runs, seed, n_sequences).items()}


def memory_unit(gates: dict, x) -> dict:
    """The LSTM unit that best writes and keeps the first marked value.

    Parameters
    ----------
    gates : dict
        `lstm_gates` of one sequence.
    x : array_like, (T, 2)
        The sequence (channel 1 marks two steps).

    Returns
    -------
    dict
        The unit with the largest product of its input gate at the first marked step and
        its smallest forget gate after it (a unit that opens to write, then holds), with
        ``first_mark``, ``second_mark``, ``input_at_mark`` (that input gate),
        ``input_elsewhere`` (its mean at the unmarked steps), ``forget_after_min`` and
        ``forget_after_median`` (over the steps after the first mark).
    """
    x = np.asarray(x)
    first, second = (int(t) for t in np.flatnonzero(x[:, 1] > 0.5)[:2])
    forget_after = gates["forget"][first + 1:]
    score = gates["input"][first] * forget_after.min(axis=0)
    unit = int(np.argmax(score))
    unmarked = np.ones(len(x), bool)
    unmarked[[first, second]] = False
    return {"unit": unit, "first_mark": first, "second_mark": second,
            "input_at_mark": float(gates["input"][first, unit]),
            "input_elsewhere": float(gates["input"][unmarked, unit].mean()),
            "forget_after_min": float(forget_after[:, unit].min()),
            "forget_after_median": float(np.median(forget_after[:, unit]))}


def _seed_list(seeds) -> str:
    """"seed 0", "seeds 0-4" (consecutive) or "seeds 0, 2, 5"."""
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def make_plots(out: str, runs: dict, curves: dict, seeds, setting: str):
    """gradients.png (every cell of `runs`), and gates.png when the plain LSTM was
    trained, in `out`. The variants get no gates plot: `lstm_gates` recomputes the gates
    with the plain LSTM's equations.

    Parameters
    ----------
    out : str
        The folder (made if missing).
    runs : dict
        Label -> `LongLagRun` of the longest lag, trained with ``seeds[0]``: gates.png
        shows its "LSTM" (when it holds one) on its first test sequence.
    curves : dict
        (cell, when) -> (S, T), one row per seed of `seeds`, as `plot_gradients` takes.
    seeds : sequence of int
    setting : str
        What else the figures depend on (e.g. "SIMD avx512, 1 thread"), in their titles.

    Returns
    -------
    paths : list of str
        The plots written; [] without matplotlib.
    skipped : str or None
        What was skipped and why, or None.
    unit : dict or None
        `memory_unit` of the LSTM's gates (computed with or without matplotlib), None
        without the plain LSTM among `runs`.
    """
    seq_len = next(iter(runs.values())).seq_len
    names = ["gradients.png"]
    unit = None
    if "LSTM" in runs:
        x = adding_data(N_TEST, seq_len, seeds[0], 1)[0][0]    # the first test sequence
        gates = lstm_gates(runs["LSTM"].model.layers[0], x)
        unit = memory_unit(gates, x)
        names.append("gates.png")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        return [], (f"matplotlib is not installed: skipped the plots {' and '.join(names)} "
                    "(pip install matplotlib)"), unit
    os.makedirs(out, exist_ok=True)
    how = "median (line) and range (band) over" if len(seeds) > 1 else "one run,"
    note = f"{how} {_seed_list(seeds)}\n{setting}"
    paths = [plot_gradients(os.path.join(out, "gradients.png"), curves, seq_len, note)]
    if unit is not None:
        paths.append(plot_gates(os.path.join(out, "gates.png"), gates, x, seq_len,
                                f"{_seed_list(seeds[:1])}; {setting}"))
    return paths, None, unit
