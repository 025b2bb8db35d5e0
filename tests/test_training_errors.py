"""The training loop's argument checks: every bad argument of fit, predict, evaluate, the
callbacks and resume_from_checkpoint is a TypeError or ValueError naming it, raised before
anything changed (weights, training and stateful flags, optimizer, callbacks)."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import optim, schedules
from lstm_native.losses import MSELoss

N, T = 8, 6


def _seq_model(seed=0):
    """Sequence to sequence, so that the same model also trains with tbptt."""
    return ln.Sequential(ln.LSTM(1, 4, batch_first=True, dtype=np.float64, seed=seed,
                                 n_threads=1),
                         ln.Linear(4, 1, dtype=np.float64, seed=seed + 1))


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, T, 1)), rng.standard_normal((N, T, 1))


class _Recorder(ln.Callback):
    """Records the hooks called; and whether the model was stateful at each batch."""

    def __init__(self, raise_at_batch=None):
        self.calls = []
        self.stateful = []
        self.raise_at_batch = raise_at_batch

    def on_train_begin(self, run):
        self.calls.append("train_begin")

    def on_batch_end(self, run, logs):
        self.stateful.append(run.model.stateful)
        if logs["batch"] == self.raise_at_batch:
            raise RuntimeError("stop here")


def _snapshot(model, opt):
    return {"weights": model.state_dict(), "training": model.training,
            "stateful": model.stateful, "optimizer": opt.state_dict(), "lr": opt.lr}


def _assert_unchanged(before, after):
    assert before["weights"].keys() == after["weights"].keys()
    for k in before["weights"]:
        assert np.array_equal(before["weights"][k], after["weights"][k]), k
    assert (before["training"], before["stateful"]) == (after["training"], after["stateful"])
    a, b = before["optimizer"], after["optimizer"]
    assert (a["type"], a["hyper"], a["step"]) == (b["type"], b["hyper"], b["step"])
    assert a["buffers"].keys() == b["buffers"].keys()
    for k in a["buffers"]:
        assert np.array_equal(a["buffers"][k], b["buffers"][k]), k
    assert before["lr"] == after["lr"]


def _fit_setup():
    """A model in eval mode, not stateful, an optimizer that has taken a step (so its
    buffers are not all zero), a scheduler and a recorder: all that fit could change."""
    x, y = _data()
    model = _seq_model()
    opt = optim.Adam(model, lr=0.01)
    ln.fit(model, x, y, loss="mse", optimizer=opt, epochs=1, batch_size=N, verbose=0,
           seed=0)
    model.eval()
    recorder = _Recorder()
    kwargs = dict(loss="mse", optimizer=opt, epochs=2, batch_size=4, verbose=0, seed=0,
                  callbacks=[recorder], scheduler=schedules.StepLR(opt, step_size=1))
    return model, x, y, opt, recorder, kwargs


def test_the_good_arguments_of_the_table_train():
    """The baseline the table below spoils one argument of: it trains (so a check that
    did not fire would change the snapshot), with and without tbptt."""
    for extra in ({}, {"tbptt": 3}):
        model, x, y, opt, recorder, kwargs = _fit_setup()
        before = _snapshot(model, opt)
        ln.fit(model, x, y, **kwargs, **extra)
        after = _snapshot(model, opt)
        assert recorder.calls == ["train_begin"]
        assert after["optimizer"]["step"] > before["optimizer"]["step"]
        assert after["training"] and not after["stateful"]
        assert recorder.stateful == [bool(extra)] * len(recorder.stateful)


def _other_model_optimizer(model):
    return optim.SGD(_seq_model(seed=5))


def _other_optimizer_scheduler(model):
    return schedules.StepLR(optim.SGD(model), step_size=1)


class _NotACallback:
    def on_epoch_end(self, run, logs):
        pass


_xs, _ys = _data()
# (id, fit's arguments to replace, expected exception, a regex its message matches).
# A callable value is called with the model (for objects built over another model).
FIT_ERRORS = [
    ("model-str", {"model": "lstm"}, TypeError, "model must be"),
    ("model-none", {"model": None}, TypeError, "model must be"),
    ("model-class", {"model": ln.Sequential}, TypeError, "model must be.*class"),
    ("optimizer-none", {"optimizer": None}, TypeError, "optimizer is required"),
    ("optimizer-str", {"optimizer": "adam"}, TypeError, "optimizer must be"),
    ("optimizer-class", {"optimizer": optim.Adam}, TypeError, "optimizer must be.*class"),
    ("optimizer-other-model", {"optimizer": _other_model_optimizer}, ValueError,
     "optimizer .*another model"),
    ("loss-none", {"loss": None}, TypeError, "loss is required"),
    ("loss-name", {"loss": "mse2"}, ValueError, "unknown loss"),
    ("loss-class", {"loss": MSELoss}, TypeError, "loss must be.*class"),
    ("loss-int", {"loss": 3}, TypeError, "loss must be"),
    ("loss-unreduced", {"loss": MSELoss(reduction="none")}, ValueError, "reduction"),
    ("epochs-negative", {"epochs": -1}, ValueError, "epochs"),
    ("epochs-float", {"epochs": 2.0}, TypeError, "epochs"),
    ("batch_size-0", {"batch_size": 0}, ValueError, "batch_size"),
    ("batch_size-str", {"batch_size": "4"}, TypeError, "batch_size"),
    ("initial_epoch-past-epochs", {"initial_epoch": 3}, ValueError, "initial_epoch"),
    ("initial_epoch-negative", {"initial_epoch": -1}, ValueError, "initial_epoch"),
    ("verbose-3", {"verbose": 3}, ValueError, "verbose"),
    ("verbose-str", {"verbose": "1"}, TypeError, "verbose"),
    ("verbose-float", {"verbose": 1.0}, TypeError, "verbose"),
    ("log_every-0", {"log_every": 0}, ValueError, "log_every"),
    ("log_every-0-tbptt", {"log_every": 0, "tbptt": 3}, ValueError, "log_every"),
    ("seed-negative", {"seed": -1}, ValueError, "seed must be None or an int"),
    ("seed-str", {"seed": "a"}, TypeError, "seed must be None or an int"),
    ("seed-float", {"seed": 1.5}, TypeError, "seed"),
    ("seed-bool", {"seed": True}, TypeError, "seed"),
    ("shuffle-str", {"shuffle": "no"}, TypeError, "shuffle"),
    ("stateful_batches-without-tbptt", {"stateful_batches": True, "shuffle": False},
     ValueError, "stateful_batches needs tbptt"),
    ("stateful_batches-str", {"stateful_batches": "yes", "tbptt": 3, "shuffle": False},
     TypeError, "stateful_batches"),
    ("stateful_batches-shuffled", {"stateful_batches": True, "tbptt": 3}, ValueError,
     "shuffle=False"),
    ("tbptt-0", {"tbptt": 0}, ValueError, "tbptt"),
    ("tbptt-float", {"tbptt": 2.5}, TypeError, "tbptt"),
    ("tbptt-lengths", {"tbptt": 3, "lengths": np.full(N, T)}, ValueError, "lengths"),
    ("tbptt-last-step-targets", {"tbptt": 3, "y": _ys[:, -1]}, ValueError,
     "sequence-to-sequence"),
    ("callbacks-single", {"callbacks": ln.EarlyStopping("loss")}, TypeError,
     "callbacks must be a sequence"),
    ("callbacks-int", {"callbacks": 3}, TypeError, "callbacks must be a sequence"),
    ("callbacks-class", {"callbacks": [ln.EarlyStopping]}, TypeError,
     "callbacks.*class EarlyStopping"),
    ("callbacks-duck", {"callbacks": [_NotACallback()]}, TypeError, "Callback"),
    ("metrics-int", {"metrics": 5}, TypeError, "metrics must be"),
    ("metrics-name", {"metrics": ["r2"]}, ValueError, "unknown metric"),
    ("metrics-element", {"metrics": [3]}, TypeError, "metric must be"),
    ("metrics-reserved", {"metrics": [("loss", lambda p, t: 0.0)]}, ValueError,
     "metric names"),
    ("scheduler-str", {"scheduler": "step"}, TypeError, "scheduler must be"),
    ("scheduler-other-optimizer", {"scheduler": _other_optimizer_scheduler}, ValueError,
     "scheduler .*another optimizer"),
    ("clip_norm-negative", {"clip_norm": -1.0}, ValueError, "clip_norm"),
    ("clip_norm-nan", {"clip_norm": float("nan")}, ValueError, "clip_norm"),
    ("clip_norm-str", {"clip_norm": "1"}, TypeError, "clip_norm"),
    ("clip_norm-bool", {"clip_norm": True}, TypeError, "clip_norm"),
    ("x-str", {"x": _xs.astype(str)}, TypeError, "x must be"),
    ("x-scalar", {"x": 1.0}, ValueError, "x must be"),
    ("x-empty", {"x": _xs[:0], "y": _ys[:0]}, ValueError, "x holds no samples"),
    ("x-ragged", {"x": [[1.0], [1.0, 2.0]]}, ValueError, "x must be"),
    ("y-samples", {"y": _ys[:-1]}, ValueError, "y must have the"),
    ("y-str", {"y": _ys.astype(str)}, TypeError, "y must be"),
    ("y-bool", {"y": _ys > 0}, TypeError, "y must be"),
    ("lengths-shape", {"lengths": np.full(N - 1, T)}, ValueError, "lengths"),
    ("lengths-float", {"lengths": np.full(N, 2.5)}, TypeError, "lengths"),
    ("lengths-zero", {"lengths": np.zeros(N, int)}, ValueError, "lengths"),
    ("lengths-past-T", {"lengths": np.full(N, T + 1)}, ValueError, "lengths"),
    ("validation-array", {"validation_data": _xs}, TypeError, "validation_data"),
    ("validation-one", {"validation_data": (_xs,)}, TypeError, "validation_data"),
    ("validation-features", {"validation_data": (np.zeros((3, T, 2)), np.zeros((3, T, 1)))},
     ValueError, "validation_data: x"),
    ("validation-x-ndim", {"validation_data": (np.zeros((3, T)), np.zeros((3, T, 1)))},
     ValueError, "validation_data: x"),
    ("validation-y-ndim", {"validation_data": (_xs, _ys[:, :, 0])}, ValueError,
     "validation_data: y"),
    ("validation-y-samples", {"validation_data": (_xs, _ys[:-1])}, ValueError,
     "validation_data: y"),
    ("validation-x-str", {"validation_data": (_xs.astype(str), _ys)}, TypeError,
     "validation_data: x"),
    ("validation-lengths", {"validation_data": (_xs, _ys, np.full(N, T + 1))}, ValueError,
     "lengths"),
]


@pytest.mark.parametrize("replace,exc,match", [case[1:] for case in FIT_ERRORS],
                         ids=[case[0] for case in FIT_ERRORS])
def test_fit_rejects_a_bad_argument_before_changing_anything(replace, exc, match):
    model, x, y, opt, recorder, kwargs = _fit_setup()
    args = {"model": model, "x": x, "y": y, **kwargs}
    args.update({k: v(model) if callable(v) and k in ("optimizer", "scheduler")
                 and not isinstance(v, type) else v for k, v in replace.items()})
    before = _snapshot(model, opt)
    with pytest.raises(exc, match=match):
        ln.fit(args.pop("model"), args.pop("x"), args.pop("y"), **args)
    _assert_unchanged(before, _snapshot(model, opt))
    assert recorder.calls == []


def test_an_optimizer_over_part_of_the_model_trains_that_part():
    """As with a PyTorch optimizer given some of the parameters: the others stay."""
    x, y = _data()
    model = _seq_model()
    before = model.state_dict()
    ln.fit(model, x, y, loss="mse", optimizer=optim.Adam(model.layers[0], lr=0.01),
           epochs=1, verbose=0, seed=0)
    after = model.state_dict()
    assert not np.array_equal(before["0.weight_ih_l0"], after["0.weight_ih_l0"])
    assert np.array_equal(before["1.weight"], after["1.weight"])


def test_none_means_no_callbacks_and_no_metrics():
    x, y = _data()
    model = _seq_model()
    history = ln.fit(model, x, y, loss="mse", optimizer=optim.SGD(model), epochs=1,
                     verbose=0, seed=0, callbacks=None, metrics=None)
    assert set(history) == {"epoch", "loss", "lr", "seconds"}


def test_clip_norm_inf_measures_only():
    x, y = _data()
    runs = []
    for clip_norm in (None, float("inf")):
        model = _seq_model()
        runs.append(ln.fit(model, x, y, loss="mse", optimizer=optim.SGD(model, lr=0.1),
                           epochs=2, verbose=0, seed=0, clip_norm=clip_norm)["loss"])
    assert runs[0] == runs[1]


# -- what stays as it was when training fails ----------------------------------------------

def test_the_stateful_flag_is_restored_when_training_fails_midway():
    model, x, y, opt, _, kwargs = _fit_setup()
    recorder = _Recorder(raise_at_batch=1)
    kwargs["callbacks"] = [recorder]
    with pytest.raises(RuntimeError, match="stop here"):
        ln.fit(model, x, y, tbptt=3, **kwargs)
    assert recorder.stateful == [True, True]
    assert model.stateful is False


def test_the_stateful_flag_is_restored_when_validation_fails():
    """Validation runs whole sequences (not stateful) inside a tbptt run (stateful): a
    failure there restores the user's setting, not either of those."""
    model, x, y, opt, _, kwargs = _fit_setup()
    model.stateful = True
    seen = []

    def fails_on_validation(pred, target):
        seen.append(model.stateful)
        if len(pred) == 3:              # the validation data: 3 samples, batches have 4
            raise ArithmeticError("metric failed")
        return 0.0

    with pytest.raises(ArithmeticError, match="metric failed"):
        ln.fit(model, x, y, tbptt=3, validation_data=(x[:3], y[:3]),
               metrics=[fails_on_validation], **kwargs)
    assert seen[0] is True and seen[-1] is False
    assert model.stateful is True


def test_a_diverging_loss_raises_floating_point_error():
    x, y = _data()
    model = _seq_model()
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="training loss"):
        ln.fit(model, x, y * 1e3, loss="mse", optimizer=optim.SGD(model, lr=1e3),
               epochs=50, batch_size=2, verbose=0, seed=0, tbptt=3)
    assert model.stateful is False and model.training


# -- predict and evaluate -----------------------------------------------------------------

PREDICT_ERRORS = [
    ("model-str", {"model": "lstm"}, TypeError, "model must be"),
    ("model-array", {"model": np.zeros(3)}, TypeError, "model must be"),
    ("batch_size-0", {"batch_size": 0}, ValueError, "batch_size"),
    ("batch_size-float", {"batch_size": 2.0}, TypeError, "batch_size"),
    ("x-str", {"x": _xs.astype(str)}, TypeError, "x must be"),
    ("x-scalar", {"x": 0.5}, ValueError, "x must be"),
    ("lengths-float", {"lengths": np.full(N, 1.5)}, TypeError, "lengths"),
    ("lengths-past-T", {"lengths": np.full(N, T + 1)}, ValueError, "lengths"),
]

EVALUATE_ERRORS = PREDICT_ERRORS + [
    ("loss-none", {"loss": None}, TypeError, "loss is required"),
    ("loss-class", {"loss": MSELoss}, TypeError, "loss must be"),
    ("loss-unreduced", {"loss": MSELoss(reduction="none")}, ValueError, "reduction"),
    ("metrics-int", {"metrics": 5}, TypeError, "metrics must be"),
    ("y-samples", {"y": _ys[:-1]}, ValueError, "y must have the"),
    ("y-str", {"y": _ys.astype(str)}, TypeError, "y must be"),
]


@pytest.mark.parametrize("replace,exc,match", [case[1:] for case in PREDICT_ERRORS],
                         ids=[case[0] for case in PREDICT_ERRORS])
def test_predict_rejects_a_bad_argument(replace, exc, match):
    x, _ = _data()
    model = _seq_model()
    args = {"model": model, "x": x, **replace}
    with pytest.raises(exc, match=match):
        ln.predict(args.pop("model"), args.pop("x"), **args)
    assert model.training


@pytest.mark.parametrize("replace,exc,match", [case[1:] for case in EVALUATE_ERRORS],
                         ids=[case[0] for case in EVALUATE_ERRORS])
def test_evaluate_rejects_a_bad_argument(replace, exc, match):
    x, y = _data()
    model = _seq_model()
    args = {"model": model, "x": x, "y": y, "loss": "mse", **replace}
    with pytest.raises(exc, match=match):
        ln.evaluate(args.pop("model"), args.pop("x"), args.pop("y"), **args)
    assert model.training


# -- callbacks ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/dir{1}/m.npz",       # a positional field: IndexError at the first epoch's end
    "m{}.npz",
    "m{epch}.npz",         # a misspelt name: KeyError
    "m{epoch.x}.npz",
    "m{epoch[0]}.npz",
    "m{epoch:q}.npz",      # an unknown format code
    "m{.npz",
    "m}.npz",
])
def test_model_checkpoint_refuses_a_bad_template_at_construction(path):
    with pytest.raises(ValueError, match="path"):
        ln.ModelCheckpoint(path)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"path": None}, TypeError, "path"),
    ({"path": b"m.npz"}, TypeError, "path"),
    ({"path": 3}, TypeError, "path"),
    ({"monitor": None}, TypeError, "monitor"),
    ({"save_best_only": "yes"}, TypeError, "save_best_only"),
    ({"mode": "best"}, ValueError, "mode"),
    ({"extra": ["a"]}, TypeError, "extra"),
])
def test_model_checkpoint_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ln.ModelCheckpoint(**{"path": "m.npz", **kwargs})


def test_model_checkpoint_fills_the_epoch_and_keeps_doubled_braces(tmp_path):
    x, y = _data()
    model = _seq_model()
    cb = ln.ModelCheckpoint(tmp_path / "m{{x}}-{epoch:02d}.npz", monitor="loss")
    ln.fit(model, x, y, loss="mse", optimizer=optim.SGD(model), epochs=2, verbose=0,
           seed=0, callbacks=[cb])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m{x}-01.npz", "m{x}-02.npz"]
    assert cb.last_path == str(tmp_path / "m{x}-02.npz")


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"monitor": 3}, TypeError, "monitor"),
    ({"patience": -1}, ValueError, "patience"),
    ({"min_delta": float("nan")}, ValueError, "min_delta"),
    ({"min_delta": -0.1}, ValueError, "min_delta"),
    ({"min_delta": "0"}, TypeError, "min_delta"),
    ({"mode": "lowest"}, ValueError, "mode"),
    ({"restore_best_weights": "yes"}, TypeError, "restore_best_weights"),
])
def test_early_stopping_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ln.EarlyStopping(**kwargs)


# -- resume_from_checkpoint -----------------------------------------------------------------

def _checkpointed_run(tmp_path, scheduler: bool):
    """A checkpoint of epoch 1, and a fresh model, optimizer, scheduler to resume into."""
    x, y = _data()
    model = _seq_model()
    opt = optim.Adam(model, lr=0.01)
    sched = schedules.StepLR(opt, step_size=1) if scheduler else None
    ln.fit(model, x, y, loss="mse", optimizer=opt, scheduler=sched, epochs=1, verbose=0,
           seed=0, callbacks=[ln.ModelCheckpoint(tmp_path / "c.npz", monitor="loss")])
    model = _seq_model(seed=3)
    opt = optim.Adam(model, lr=0.5)
    return tmp_path / "c.npz", model, opt, schedules.StepLR(opt, step_size=2)


@pytest.mark.parametrize("case", ["scheduler-str", "scheduler-other-optimizer",
                                  "no-scheduler-state", "no-epoch", "optimizer-none",
                                  "optimizer-other-model", "model-str"])
def test_resume_from_checkpoint_checks_before_loading(tmp_path, case):
    path, model, opt, sched = _checkpointed_run(tmp_path, scheduler=case != "no-scheduler-state")
    exc, match = {"scheduler-str": (TypeError, "scheduler must be"),
                  "scheduler-other-optimizer": (ValueError, "scheduler .*another optimizer"),
                  "no-scheduler-state": (ValueError, "no scheduler state"),
                  "no-epoch": (ValueError, "no epoch"),
                  "optimizer-none": (TypeError, "optimizer is required"),
                  "optimizer-other-model": (ValueError, "optimizer .*another model"),
                  "model-str": (TypeError, "model must be")}[case]
    args = [path, model, opt, sched]
    if case == "scheduler-str":
        args[3] = "step"
    elif case == "scheduler-other-optimizer":
        args[3] = schedules.StepLR(optim.Adam(model), step_size=2)
    elif case == "no-epoch":
        ln.save_checkpoint(path, _seq_model(), optim.Adam(_seq_model()))
    elif case == "optimizer-none":
        args[2] = None
    elif case == "optimizer-other-model":
        args[2] = optim.Adam(_seq_model())
    elif case == "model-str":
        args[1] = "lstm"
    before = _snapshot(model, opt)
    sched_before = sched.state_dict()
    with pytest.raises(exc, match=match):
        ln.resume_from_checkpoint(*args)
    _assert_unchanged(before, _snapshot(model, opt))
    assert sched.state_dict() == sched_before
