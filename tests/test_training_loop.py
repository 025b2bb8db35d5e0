"""The pieces of fit's loop: the epoch iterator (batches and truncated-BPTT chunks), the
callback list and the order of its hooks, the schedule's step through the callback
protocol, and the progress bar."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import schedules, training
from lstm_native.callbacks import CallbackList
from lstm_native.losses import MSELoss


def _seq_model(seed=0):
    return ln.Sequential(ln.LSTM(1, 4, batch_first=True, dtype=np.float64, seed=seed,
                                 n_threads=1),
                         ln.Linear(4, 1, dtype=np.float64, seed=seed + 1))


def _numbered(n, T):
    """x[i, t, 0] = 100 i + t: each value says which sample and step it is."""
    x = (100 * np.arange(n)[:, None] + np.arange(T)[None, :])[:, :, None].astype(np.float64)
    return x, -x


# -- the epoch iterator ---------------------------------------------------------------------

@pytest.mark.parametrize("shuffle", [True, False])
def test_the_iterator_gives_each_sample_once_in_the_order_of_seed_and_epoch(shuffle):
    x, y = _numbered(10, 3)
    lengths = np.arange(10) % 3 + 1
    batches = training._EpochIterator(x, y, lengths, batch_size=4, shuffle=shuffle, seed=5,
                                      tbptt=None)
    assert batches.steps_per_batch == 1
    for epoch in (0, 3):
        steps = list(batches.epoch(epoch))
        assert [s.batch for s in steps] == [0, 1, 2]
        assert [s.size for s in steps] == [4, 4, 2] == [s.weight for s in steps]
        assert all(s.chunk is None for s in steps)
        order = np.concatenate([s.x[:, 0, 0] for s in steps]) // 100
        assert np.array_equal(order, training._epoch_order(10, 5, epoch, shuffle))
        for s in steps:
            rows = s.x[:, 0, 0].astype(int) // 100
            assert np.array_equal(s.y, -s.x) and np.array_equal(s.lengths, lengths[rows])


def test_the_iterator_cuts_each_batch_into_chunks_under_tbptt():
    x, y = _numbered(6, 7)
    batches = training._EpochIterator(x, y, None, batch_size=4, shuffle=True, seed=1,
                                      tbptt=3)
    assert batches.steps_per_batch == 3
    steps = list(batches.epoch(2))
    assert [(s.batch, s.chunk) for s in steps] == [
        (0, (0, 3)), (0, (3, 6)), (0, (6, 7)), (1, (0, 3)), (1, (3, 6)), (1, (6, 7))]
    assert [s.weight for s in steps] == [12, 12, 4, 6, 6, 2]
    order = training._epoch_order(6, 1, 2, True)
    for batch, rows in ((0, order[:4]), (1, order[4:])):
        chunks = [s for s in steps if s.batch == batch]
        assert np.array_equal(np.concatenate([s.x for s in chunks], axis=1), x[rows])
        assert np.array_equal(np.concatenate([s.y for s in chunks], axis=1), y[rows])
        assert all(s.lengths is None for s in chunks)


# -- the callback list and the order of the hooks -------------------------------------------

class _Log(ln.Callback):
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def on_train_begin(self, run):
        self.calls.append((self.name, "train_begin"))

    def on_epoch_begin(self, run):
        self.calls.append((self.name, "epoch_begin"))

    def on_batch_end(self, run, logs):
        self.calls.append((self.name, "batch_end", logs["batch"]))

    def on_epoch_end(self, run, logs):
        self.calls.append((self.name, "epoch_end", logs["epoch"]))

    def on_train_end(self, run):
        self.calls.append((self.name, "train_end"))


def test_the_callback_list_runs_each_hook_of_its_callbacks_in_their_order():
    calls = []
    hooks = CallbackList([_Log("a", calls), CallbackList([_Log("b", calls)])])
    hooks.on_train_begin(None)
    hooks.on_epoch_begin(None)
    hooks.on_batch_end(None, {"batch": 0})
    hooks.on_epoch_end(None, {"epoch": 1})
    hooks.on_train_end(None)
    assert calls == [("a", "train_begin"), ("b", "train_begin"), ("a", "epoch_begin"),
                     ("b", "epoch_begin"), ("a", "batch_end", 0), ("b", "batch_end", 0),
                     ("a", "epoch_end", 1), ("b", "epoch_end", 1), ("a", "train_end"),
                     ("b", "train_end")]


def test_fit_takes_a_callback_list_among_its_callbacks():
    calls = []
    model = _seq_model()
    ln.fit(model, np.ones((2, 3, 1)), np.zeros((2, 3, 1)), loss=MSELoss(),
           optimizer=ln.optim.SGD(model), epochs=1, batch_size=2, verbose=0,
           callbacks=[CallbackList([_Log("a", calls)]), _Log("b", calls)])
    assert calls == [("a", "train_begin"), ("b", "train_begin"), ("a", "epoch_begin"),
                     ("b", "epoch_begin"), ("a", "batch_end", 0), ("b", "batch_end", 0),
                     ("a", "epoch_end", 1), ("b", "epoch_end", 1), ("a", "train_end"),
                     ("b", "train_end")]


def test_at_an_epoch_end_the_schedule_steps_first_and_the_line_is_printed_last(capsys):
    """The user's callbacks see the schedule's new lr (a checkpoint saves its new state)
    and a History without the epoch ending now; the line shows the logs they left."""
    x, y = np.ones((4, 3, 1)), np.zeros((4, 3, 1))
    model = _seq_model()
    opt = ln.optim.SGD(model, lr=0.1)
    seen = []

    class Look(ln.Callback):
        def on_epoch_end(self, run, logs):
            seen.append((run.optimizer.lr, len(run.history.get("epoch", []))))
            print("callback")
            logs["extra"] = 7.0

    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, epochs=2, verbose=2,
                     scheduler=schedules.StepLR(opt, step_size=1, gamma=0.5),
                     callbacks=[Look()])
    assert seen == [(0.05, 0), (0.025, 1)]
    assert history["lr"] == [0.1, 0.05] and history["extra"] == [7.0, 7.0]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0::2] == ["callback", "callback"]
    assert [line.split("  ")[0] for line in lines[1::2]] == ["epoch 1/2", "epoch 2/2"]
    assert all("extra 7" in line for line in lines[1::2])


# -- the schedule's step through the callback protocol --------------------------------------

class _MetricStepLR(schedules.StepLR):
    """A schedule that is no ReduceLROnPlateau but declares that its step takes the
    metric: it records what it got."""

    takes_metric = True

    def __init__(self, optimizer):
        super().__init__(optimizer, step_size=1, gamma=0.5)
        self.metrics = []

    def step(self, metric):
        self.metrics.append(metric)
        super().step()


def test_which_schedules_take_the_metric():
    opt = ln.optim.SGD(_seq_model())
    assert schedules.ReduceLROnPlateau(opt).takes_metric is True
    assert schedules.StepLR(opt, step_size=1).takes_metric is False
    assert schedules.CosineAnnealingLR(opt, T_max=2).takes_metric is False


@pytest.mark.parametrize("validation", [True, False])
def test_a_schedule_that_declares_takes_metric_steps_on_the_monitored_value(validation):
    x, y = np.ones((4, 3, 1)), np.zeros((4, 3, 1))
    model = _seq_model()
    opt = ln.optim.SGD(model, lr=0.1)
    sched = _MetricStepLR(opt)
    history = ln.fit(model, x, y, loss=MSELoss(), optimizer=opt, epochs=3, verbose=0,
                     scheduler=sched, validation_data=(x, y) if validation else None)
    assert sched.metrics == history["val_loss" if validation else "loss"]
    assert sched.last_epoch == 3 and history["lr"] == [0.1, 0.05, 0.025]


# -- the progress bar -----------------------------------------------------------------------

class _FakeBar:
    """Records what fit asks of tqdm's class."""

    bars: list = []

    def __init__(self, total, desc, unit, leave, file):
        self.total, self.desc, self.updates, self.losses = total, desc, [], []
        self.closed = False
        _FakeBar.bars.append(self)

    def set_postfix(self, loss, refresh):
        self.losses.append(loss)

    def update(self, n):
        self.updates.append(n)

    def close(self):
        self.closed = True


@pytest.fixture
def fake_bar(monkeypatch):
    _FakeBar.bars = []
    monkeypatch.setattr(training, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(training, "_import_tqdm", lambda: _FakeBar)
    return _FakeBar


def test_the_bar_moves_by_a_batch_after_its_last_chunk(fake_bar, capsys):
    x, y = _numbered(7, 8)
    x, y = x / 800, y / 800
    model = _seq_model()
    losses = []

    class Losses(ln.Callback):
        def on_batch_end(self, run, logs):
            losses.append(logs["loss"])

    ln.fit(model, x, y, loss=MSELoss(), optimizer=ln.optim.SGD(model, lr=0.01), epochs=2,
           batch_size=3, tbptt=3, seed=0, callbacks=[Losses()])
    assert [bar.desc for bar in fake_bar.bars] == ["epoch 1/2", "epoch 2/2"]
    assert len(losses) == 2 * 3 * 3        # 2 epochs of 3 batches of 3 chunks
    for epoch, bar in enumerate(fake_bar.bars):
        assert bar.total == 7 and bar.updates == [3, 3, 1] and bar.closed
        last_chunks = losses[9 * epoch + 2:9 * epoch + 9:3]
        assert bar.losses == [f"{value:.4g}" for value in last_chunks]
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_the_bar_is_closed_and_the_state_restored_when_training_raises(fake_bar):
    x, y = _numbered(4, 6)
    model = _seq_model()

    class Fails(ln.Callback):
        def on_batch_end(self, run, logs):
            if logs["batch"] == 1:
                raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        ln.fit(model, x / 600, y / 600, loss=MSELoss(), optimizer=ln.optim.SGD(model),
               epochs=2, batch_size=2, tbptt=3, callbacks=[Fails()])
    assert len(fake_bar.bars) == 1 and fake_bar.bars[0].closed
    assert model.stateful is False and model.training
