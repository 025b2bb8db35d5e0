"""The training loop: fit, predict, evaluate, callbacks, resuming, truncated BPTT.

The models run one thread (n_threads=1): the loop is what is tested here, and these small
batches are fastest on one thread.
"""
from __future__ import annotations

import functools
import sys

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import training
from lstm_native.losses import MSELoss

from conftest import assert_close


def _model(seed=0, hidden=8, out=1, dtype=np.float64, dropout=None):
    layers = [ln.LSTM(1, hidden, batch_first=True, dtype=dtype, seed=seed, n_threads=1),
              ln.LastStep(batch_first=True)]
    if dropout is not None:
        layers.append(ln.Dropout(dropout, seed=seed))
    layers.append(ln.Linear(hidden, out, dtype=dtype, seed=seed + 1))
    return ln.Sequential(*layers)


def _sine_task(n=96, lookback=10, seed=0):
    """Next value of a noisy sine from the last `lookback` values: learnable."""
    series = ln.data.noisy_sine(n + lookback + 1, period=16, noise=0.05, seed=seed)
    x, y = ln.data.make_windows(series, lookback)
    return x, y[:, :, 0]


def _weights(model):
    return model.state_dict()


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


# -- fit ---------------------------------------------------------------------------------

def test_fit_drives_the_loss_down_and_fills_the_history():
    x, y = _sine_task()
    model = _model()
    opt = ln.optim.Adam(model, lr=0.02)
    before = training.evaluate(model, x, y, loss=MSELoss())["loss"]
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, epochs=30, batch_size=16,
                     seed=0, verbose=0, metrics=["mae", "rmse"],
                     validation_data=(x[:32], y[:32]))
    after = training.evaluate(model, x, y, loss=MSELoss())["loss"]
    assert after < 0.05 * before, (before, after)
    assert isinstance(history, ln.History) and history.history is history
    keys = {"epoch", "loss", "val_loss", "mae", "rmse", "val_mae", "val_rmse", "lr", "seconds"}
    assert set(history) == keys
    assert all(len(v) == 30 for v in history.values())
    assert history["epoch"] == list(range(1, 31))
    assert history["lr"] == [0.02] * 30
    assert all(s > 0 for s in history["seconds"])
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    # val_* are evaluate's numbers on the validation data.
    scores = ln.evaluate(model, x[:32], y[:32], loss=MSELoss(), metrics=["mae", "rmse"])
    assert history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-12)
    assert history["val_rmse"][-1] == pytest.approx(np.sqrt(scores["loss"]), rel=1e-9)
    assert model.training


def test_fit_without_validation_has_no_val_keys_and_accepts_named_losses():
    x, y = _sine_task(n=32)
    model = _model()
    history = ln.fit(model, x, y, loss="mse", optimizer=ln.optim.SGD(model, lr=0.01),
                     epochs=2, verbose=0, seed=0)
    assert set(history) == {"epoch", "loss", "lr", "seconds"}


def test_fit_with_a_scheduler_and_clipping_records_the_lr_of_each_epoch():
    x, y = _sine_task(n=32)
    model = _model()
    opt = ln.optim.SGD(model, lr=0.1)
    sched = ln.schedules.StepLR(opt, step_size=2, gamma=0.5)
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, epochs=5, scheduler=sched,
                     clip_norm=0.5, verbose=0, seed=0)
    assert history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_reduce_lr_on_plateau_gets_the_validation_loss(monkeypatch):
    x, y = _sine_task(n=32)
    model = _model()
    opt = ln.optim.SGD(model, lr=0.0)   # nothing improves
    sched = ln.schedules.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    seen = []
    monkeypatch.setattr(sched, "step", lambda metric: seen.append(metric))
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, epochs=2, scheduler=sched,
                     validation_data=(x[:8], y[:8]), verbose=0, seed=0)
    assert seen == history["val_loss"]


def test_fit_with_lengths_and_a_bare_lstm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 6, 2))
    lengths = rng.integers(1, 7, size=12)
    model = ln.Sequential(ln.LSTM(2, 4, batch_first=True, dtype=np.float64, seed=0, n_threads=1),
                          ln.LastStep(batch_first=True), ln.Linear(4, 1, dtype=np.float64))
    y = rng.standard_normal((12, 1))
    ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model), epochs=1,
           lengths=lengths, verbose=0, seed=0, batch_size=5)
    # A bare LSTM: its `out` is the prediction.
    lstm = ln.LSTM(2, 3, batch_first=True, dtype=np.float64, seed=0, n_threads=1)
    yseq = rng.standard_normal((12, 6, 3))
    history = ln.fit(lstm, x, yseq, loss=MSELoss(), optimizer=ln.optim.Adam(lstm, lr=0.05),
                     epochs=5, lengths=lengths, verbose=0, seed=0)
    assert history["loss"][-1] < history["loss"][0]
    out = ln.predict(lstm, x, lengths=lengths, batch_size=5)
    assert out.shape == (12, 6, 3)
    with pytest.raises(TypeError, match="lengths"):
        ln.fit(ln.Linear(2, 1), x[:, 0], y, loss=MSELoss(),
               optimizer=ln.optim.SGD(ln.Linear(2, 1)), lengths=lengths, verbose=0)


def test_fit_argument_errors():
    x, y = _sine_task(n=16)
    model = _model()
    opt = ln.optim.SGD(model)
    with pytest.raises(ValueError, match="y must have the"):
        ln.fit(model, x, y[:-1], loss=MSELoss(), optimizer=opt, verbose=0)
    with pytest.raises(TypeError, match="loss"):
        ln.fit(model, x, y, loss=None, optimizer=opt)
    with pytest.raises(ValueError, match="initial_epoch"):
        ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, epochs=2, initial_epoch=3)
    with pytest.raises(ValueError, match="unknown metric"):
        ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, metrics=["r2"])
    with pytest.raises(TypeError, match="validation_data"):
        ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, validation_data=x)
    with pytest.raises(ValueError, match="verbose"):
        ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, verbose=3)


def test_a_diverging_loss_raises():
    x, y = _sine_task(n=16)
    model = _model()
    with pytest.raises(FloatingPointError, match="learning rate"):
        ln.fit(model, x, y * np.inf, loss=MSELoss(), optimizer=ln.optim.SGD(model),
               verbose=0)


# -- shuffling and resuming ----------------------------------------------------------------

def test_shuffling_is_reproducible_by_seed():
    x, y = _sine_task(n=48)
    runs = []
    for seed in (3, 3, 4):
        model = _model()
        ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model, lr=0.01),
               epochs=3, batch_size=8, seed=seed, verbose=0)
        runs.append(_weights(model))
    _assert_same_weights(runs[0], runs[1])
    assert not np.array_equal(runs[0]["0.weight_hh_l0"], runs[2]["0.weight_hh_l0"])
    # The order of an epoch is a function of (seed, epoch) only.
    order = training._epoch_order(48, 3, 1, True)
    assert np.array_equal(order, training._epoch_order(48, 3, 1, True))
    assert not np.array_equal(order, training._epoch_order(48, 3, 2, True))
    assert np.array_equal(training._epoch_order(5, 3, 1, False), np.arange(5))


def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path):
    x, y = _sine_task(n=40)
    val = (x[:8], y[:8])

    def setup():
        model = _model(dtype=np.float32)
        opt = ln.optim.Adam(model, lr=0.01)
        return model, opt, ln.schedules.StepLR(opt, step_size=2, gamma=0.5)

    kw = dict(loss=MSELoss(), batch_size=8, seed=11, verbose=0, validation_data=val,
              clip_norm=1.0)
    model, opt, sched = setup()
    full = ln.fit(model, x, y, optimizer=opt, scheduler=sched, epochs=5, **kw)
    expected = _weights(model)

    # Interrupted after 3 epochs: every epoch saved its checkpoint.
    path = tmp_path / "ckpt-{epoch}.npz"
    model, opt, sched = setup()
    ln.fit(model, x, y, optimizer=opt, scheduler=sched, epochs=3,
           callbacks=[ln.ModelCheckpoint(path, monitor="val_loss")], **kw)

    model, opt, sched = setup()   # a new process: fresh objects
    state = ln.resume_from_checkpoint(tmp_path / "ckpt-3.npz", model, opt, sched)
    assert state["initial_epoch"] == 3
    assert state["history"]["epoch"] == [1, 2, 3]
    assert state["history"]["loss"] == full["loss"][:3]
    rest = ln.fit(model, x, y, optimizer=opt, scheduler=sched, epochs=5,
                  initial_epoch=state["initial_epoch"], **kw)
    assert rest["epoch"] == [4, 5]
    assert rest["loss"] == full["loss"][3:]
    assert rest["lr"] == full["lr"][3:]
    _assert_same_weights(_weights(model), expected)


def test_resume_with_a_dropout_layer_equals_the_uninterrupted_run(tmp_path):
    """The checkpoint keeps the Dropout's generator: the resumed run draws its masks."""
    x, y = _sine_task(n=32)
    kw = dict(loss=MSELoss(), batch_size=8, seed=5, verbose=0)
    model = _model(dropout=0.3)
    ln.fit(model, x, y, optimizer=ln.optim.Adam(model, lr=0.01), epochs=4, **kw)
    expected = _weights(model)

    model = _model(dropout=0.3)
    ln.fit(model, x, y, optimizer=ln.optim.Adam(model, lr=0.01), epochs=2,
           callbacks=[ln.ModelCheckpoint(tmp_path / "ckpt-{epoch}.npz")], **kw)
    model = _model(dropout=0.3)   # its Dropout's generator back at its seed
    opt = ln.optim.Adam(model, lr=0.01)
    state = ln.resume_from_checkpoint(tmp_path / "ckpt-2.npz", model, opt)
    ln.fit(model, x, y, optimizer=opt, epochs=4, initial_epoch=state["initial_epoch"], **kw)
    _assert_same_weights(_weights(model), expected)


# -- callbacks -----------------------------------------------------------------------------

def test_early_stopping_restores_the_best_weights():
    """Training on noise with a large lr: the validation loss rises after a while."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5, 1))
    y = rng.standard_normal((64, 1))
    xv, yv = rng.standard_normal((32, 5, 1)), rng.standard_normal((32, 1))
    model = _model(hidden=16)
    snapshots = []

    class Snapshot(ln.Callback):
        def on_epoch_end(self, run, logs):
            snapshots.append(run.model.state_dict())

    stopper = ln.EarlyStopping("val_loss", patience=3)
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model, lr=0.05),
                     epochs=100, validation_data=(xv, yv), callbacks=[Snapshot(), stopper],
                     verbose=0, seed=0)
    val = history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) < 100 and history.stopped_epoch == len(val) == stopper.stopped_epoch
    assert len(val) == best + 1 + 4            # patience 3: the 4th worse epoch stops it
    assert stopper.best_epoch == best + 1 and stopper.best == val[best]
    assert val[-1] > val[best]
    _assert_same_weights(_weights(model), snapshots[best])
    assert ln.evaluate(model, xv, yv, loss=MSELoss())["loss"] == pytest.approx(val[best])


def test_early_stopping_without_validation_data_says_so():
    x, y = _sine_task(n=16)
    model = _model()
    with pytest.raises(ValueError, match="validation_data"):
        ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model),
               callbacks=[ln.EarlyStopping()], verbose=0)
    stopper = ln.EarlyStopping("loss", patience=0, mode="max", restore_best_weights=False)
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model, lr=0.01),
                     epochs=10, callbacks=[stopper], verbose=0, seed=0)
    assert len(history["loss"]) == 2           # the loss fell: "worse" in max mode


def test_model_checkpoint_saves_the_best_and_every_epoch(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 5, 1)), rng.standard_normal((32, 1))
    xv, yv = rng.standard_normal((16, 5, 1)), rng.standard_normal((16, 1))
    model = _model()
    best_path = tmp_path / "best.npz"
    snapshots = []

    class Snapshot(ln.Callback):
        def on_epoch_end(self, run, logs):
            snapshots.append(run.model.state_dict())

    cb = ln.ModelCheckpoint(best_path, save_best_only=True, extra={"note": "hello"})
    every = ln.ModelCheckpoint(tmp_path / "e{epoch:02d}.npz", monitor="loss")
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model, lr=0.05),
                     epochs=12, validation_data=(xv, yv), callbacks=[Snapshot(), cb, every],
                     verbose=0, seed=0)
    best = int(np.argmin(history["val_loss"]))
    loaded = ln.load_checkpoint(best_path)
    assert loaded["epoch"] == best + 1
    assert loaded["extra"]["note"] == "hello"
    assert loaded["extra"]["value"] == history["val_loss"][best]
    assert loaded["extra"]["history"]["val_loss"] == history["val_loss"][:best + 1]
    assert loaded["optimizer_state"]["type"] == "Adam"
    _assert_same_weights(loaded["model"].state_dict(), snapshots[best])
    assert sorted(p.name for p in tmp_path.glob("e*.npz")) == [f"e{i:02d}.npz"
                                                               for i in range(1, 13)]
    assert every.last_path == str(tmp_path / "e12.npz")


def test_callback_hooks_and_the_stop_flag():
    x, y = _sine_task(n=19)   # 20 windows
    model = _model()
    calls = []

    class Recorder(ln.Callback):
        def on_train_begin(self, run):
            calls.append("train_begin")

        def on_epoch_begin(self, run):
            calls.append(f"epoch_begin {run.epoch}")

        def on_batch_end(self, run, logs):
            calls.append(f"batch {logs['batch']} {logs['size']}")

        def on_epoch_end(self, run, logs):
            calls.append(f"epoch_end {logs['epoch']}")
            run.stop_training = logs["epoch"] == 2

        def on_train_end(self, run):
            calls.append("train_end")

    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model), epochs=5,
                     batch_size=16, callbacks=[Recorder()], verbose=0, seed=0)
    assert calls == ["train_begin", "epoch_begin 0", "batch 0 16", "batch 1 4", "epoch_end 1",
                     "epoch_begin 1", "batch 0 16", "batch 1 4", "epoch_end 2", "train_end"]
    assert history.stopped_epoch == 2 and history["epoch"] == [1, 2]


# -- predict and evaluate ------------------------------------------------------------------

def test_predict_and_evaluate_in_batches_equal_one_call_and_restore_the_mode():
    x, y = _sine_task(n=50)
    model = _model(dropout=0.5)
    model.eval()
    whole = model(x)
    model.train()
    for batch_size in (1, 7, 50, 1000):
        out = ln.predict(model, x, batch_size=batch_size)
        assert_close(out, whole, np.float64, name=f"predict batch {batch_size}")
        assert model.training                       # the mode is restored
    model.eval()
    scores = ln.evaluate(model, x, y, loss=MSELoss(), metrics=["mae"], batch_size=7)
    assert not model.training
    assert scores["loss"] == pytest.approx(float(np.mean((whole - y) ** 2)), rel=1e-10)
    assert scores["mae"] == pytest.approx(float(np.mean(np.abs(whole - y))), rel=1e-10)
    assert set(scores) == {"loss", "mae"}


# -- truncated BPTT --------------------------------------------------------------------------

def _seq_model(dtype=np.float64):
    return ln.Sequential(ln.LSTM(1, 8, batch_first=True, dtype=dtype, seed=0, n_threads=1),
                         ln.Linear(8, 1, dtype=dtype, seed=1))


def _seq_task(n=8, T=60):
    """Predict each step's next value of long sine sequences (sequence to sequence)."""
    rng = np.random.default_rng(0)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    t = np.arange(T + 1)[None, :]
    s = np.sin(2 * np.pi * t / 20 + phase)
    return s[:, :-1, None], s[:, 1:, None]


def test_tbptt_chunks_carry_the_state_like_one_long_forward():
    """With lr = 0 the weights stay: the loss fit measures over the chunks, each starting
    from the state the previous ended in, is the loss of one forward over the whole
    sequences."""
    x, y = _seq_task()
    model = _seq_model()
    whole = ln.evaluate(model, x, y, loss=MSELoss())["loss"]
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model, lr=0.0),
                     epochs=1, batch_size=4, tbptt=7, verbose=0, seed=0)
    assert history["loss"][0] == pytest.approx(whole, rel=1e-12)
    assert model.stateful is False                   # restored after the run
    # The stateful forward over chunks equals the long forward, output by output.
    model.stateful = True
    model.eval()
    chunks = [model(x[:, s:s + 7]) for s in range(0, x.shape[1], 7)]
    model.stateful = False
    assert_close(np.concatenate(chunks, axis=1), model(x), np.float64, name="out",
                 rtol=1e-12)


def test_tbptt_training_reduces_the_loss_and_resets_on_demand():
    x, y = _seq_task()
    model = _seq_model(np.float32)
    resets = []

    class CountResets(ln.Callback):
        def on_batch_end(self, run, logs):
            if logs["batch"] % 3 == 2:   # reset on demand, mid-batch
                run.reset_states()
                resets.append(logs["batch"])

    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model, lr=0.02),
                     epochs=15, batch_size=4, tbptt=10, validation_data=(x, y),
                     callbacks=[CountResets()], verbose=0, seed=0)
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert history["val_loss"][-1] < 0.1 * history["val_loss"][0]
    assert resets


def test_tbptt_across_batches_and_errors():
    x, y = _seq_task(n=8)
    model = _seq_model()
    ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model), epochs=1,
           batch_size=4, tbptt=10, shuffle=False, stateful_batches=True, verbose=0)
    with pytest.raises(ValueError, match="shuffle=False"):
        ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model), tbptt=10,
               stateful_batches=True, verbose=0)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(model), tbptt=10,
               batch_size=3, shuffle=False, stateful_batches=True, verbose=0)
    with pytest.raises(ValueError, match="sequence-to-sequence"):
        ln.fit(model, x, y[:, -1], loss=MSELoss(), optimizer=ln.optim.Adam(model), tbptt=10,
               verbose=0)
    lstm = ln.LSTM(1, 2, batch_first=True, dtype=np.float64, n_threads=1)
    with pytest.raises(TypeError, match="stateful mode"):
        ln.fit(lstm, x, y, loss=MSELoss(), optimizer=ln.optim.Adam(lstm), tbptt=10,
               verbose=0)


# -- progress ------------------------------------------------------------------------------

def test_verbose_0_prints_nothing(capsys):
    x, y = _sine_task(n=16)
    model = _model()
    ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model), epochs=2, verbose=0,
           validation_data=(x, y))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_without_tqdm_prints_a_line_per_epoch(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)          # import tqdm fails
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(training, "_stderr_is_terminal", lambda: True)
    assert training._import_tqdm() is None
    x, y = _sine_task(n=16)
    model = _model()
    ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model), epochs=3, verbose=1,
           validation_data=(x, y), metrics=["mae"])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 3 and captured.err == ""
    assert lines[0].startswith("epoch 1/3  loss ")
    for word in ("val_loss", "mae", "val_mae", " s ", "samples/s"):
        assert word in lines[-1]


def test_progress_log_every(capsys):
    x, y = _sine_task(n=16)
    model = _model()
    ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model), epochs=10, verbose=2,
           log_every=4)
    epochs = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    assert epochs == ["1/10", "4/10", "8/10", "10/10"]


def test_progress_bar_with_tqdm_on_a_terminal(capsys, monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(training, "_stderr_is_terminal", lambda: True)
    # Draw at every update (the default redraws at most every 0.1 s).
    monkeypatch.setattr(training, "_import_tqdm",
                        lambda: functools.partial(tqdm.tqdm, mininterval=0, miniters=1))
    x, y = _sine_task(n=16)
    model = _model()
    ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model), epochs=2, verbose=1)
    captured = capsys.readouterr()
    assert "samples" in captured.err and "loss=" in captured.err     # the bar
    assert len(captured.out.splitlines()) == 2                        # and the epoch lines
