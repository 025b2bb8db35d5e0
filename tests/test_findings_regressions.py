"""Regressions of the defects the property-based suite (test_fuzz.py) found, one test
(or a few) per finding, by its id in the fuzz findings."""
import numpy as np
import pytest

import lstm_native as ln


def _model():
    return ln.Sequential(ln.LSTM(1, 1, batch_first=True, seed=0),
                         ln.LastStep(batch_first=True), ln.Linear(1, 1, seed=0))


# -- F4: 0-d inputs give arrays ---------------------------------------------------------

@pytest.mark.parametrize("loss", [ln.losses.mse_loss, ln.losses.l1_loss, ln.losses.huber_loss])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_of_0d_inputs_give_an_ndarray_gradient(loss, reduction):
    value, grad = loss(np.array(3.0, np.float32), np.array(0.0, np.float32), reduction)
    assert isinstance(grad, np.ndarray) and grad.shape == () and grad.dtype == np.float32
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.shape == ()


def test_dropout_of_a_0d_input_gives_an_ndarray():
    layer = ln.Dropout(0.5, seed=0)
    out = layer(np.array(1.0))
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float64
    dx = layer.backward(np.array(1.0))
    assert isinstance(dx, np.ndarray) and dx.shape == ()


# -- F7: a 2-D x for a recurrent model is refused -----------------------------------------

def test_predict_evaluate_fit_refuse_a_2d_x_for_a_recurrent_model():
    m, x, y = _model(), np.zeros((2, 1), np.float32), np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, F\)"):
        ln.predict(m, x, batch_size=2)
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, F\)"):
        ln.evaluate(m, x, y, loss="mse")
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, F\)"):
        ln.fit(m, x, y, loss="mse", optimizer=ln.optim.Adam(m), epochs=1, verbose=0)
    x3 = np.zeros((2, 3, 1), np.float32)
    with pytest.raises(ValueError, match=r"validation_data: x must have shape \(N, T, F\)"):
        ln.fit(m, x3, y, loss="mse", optimizer=ln.optim.Adam(m), epochs=1, verbose=0,
               validation_data=(x, y))
    assert ln.predict(m, x3, batch_size=1).shape == (2, 1)
    # A model that does not start with a recurrent layer still takes 2-D x.
    lin = ln.Linear(1, 1, seed=0)
    assert ln.predict(lin, x, batch_size=1).shape == (2, 1)


# -- F8: a std that underflows is treated as a constant column -----------------------------

def test_standard_scaler_std_underflow_gets_scale_1():
    train = np.array([1.2138441e-181, 0.0])
    scaler = ln.data.StandardScaler().fit(train)
    assert scaler.scale_.tolist() == [1.0]
    assert np.all(np.isfinite(scaler.transform(train)))
    again = ln.data.StandardScaler.from_state(scaler.get_state())
    assert again.scale_.tolist() == [1.0]


# -- F9: the state a diverged step leaves loads back --------------------------------------

def test_optimizer_state_after_an_overflowing_step_loads_back():
    """As torch's, a step that overflows writes what it computed; its state_dict (then
    holding inf/nan) must load back, so that such a run's checkpoint can be read."""
    m = ln.Sequential(ln.LSTM(2, 2, batch_first=True, seed=0), ln.Linear(2, 1, seed=0))
    opt = ln.optim.Adam(m, weight_decay=8.3e20)
    out = m(np.ones((2, 3, 2), np.float32))
    m.backward(np.ones_like(out))
    with np.errstate(over="ignore", invalid="ignore"):
        opt.step()
        opt.step()
    state = opt.state_dict()
    assert not all(np.isfinite(v).all() for v in state["buffers"].values())
    fresh = ln.optim.Adam(m, weight_decay=8.3e20)
    fresh.load_state_dict(state)
    for k, v in fresh.state_dict()["buffers"].items():
        np.testing.assert_array_equal(v, state["buffers"][k])


def test_fit_reports_a_diverging_step_as_floating_point_error():
    m = _model()
    x, y = np.ones((4, 3, 1), np.float32), np.ones((4, 1), np.float32)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(FloatingPointError):
        ln.fit(m, x, y, loss="mse", optimizer=ln.optim.SGD(m, lr=1e38, weight_decay=1e38),
               epochs=2, batch_size=2, verbose=0, seed=0)


# -- F10: a huge stride ---------------------------------------------------------------------

@pytest.mark.parametrize("stride", [2 ** 63, 2 ** 200])
def test_make_windows_huge_stride_gives_the_one_window(stride):
    x, y = ln.data.make_windows(np.arange(3.0), 1, 1, stride)
    assert x.ravel().tolist() == [0.0] and y.ravel().tolist() == [1.0]
    assert ln.data.n_windows(3, 1, 1, stride) == 1


# -- F12, F14: ModelCheckpoint paths refused at construction ---------------------------------

@pytest.mark.parametrize("name", ["{epoch:>99999999999}", "{epoch:>100000}", "a" * 300,
                                  "{epoch:.300f}"])
def test_model_checkpoint_refuses_a_name_too_long(tmp_path, name):
    with pytest.raises(ValueError, match="path"):
        ln.ModelCheckpoint(str(tmp_path / name))


@pytest.mark.parametrize("suffix", ["", "/", "/."])
def test_model_checkpoint_refuses_a_directory(tmp_path, suffix):
    with pytest.raises(ValueError, match="path .* names a directory"):
        ln.ModelCheckpoint(str(tmp_path) + suffix)


def test_model_checkpoint_still_takes_a_template(tmp_path):
    cb = ln.ModelCheckpoint(tmp_path / "ckpt-{epoch:03d}.npz")
    assert cb.path.endswith("ckpt-{epoch:03d}.npz")


# -- F13: resume_from_checkpoint documents the OSErrors ---------------------------------------

def test_resume_from_checkpoint_documents_the_oserrors(tmp_path):
    assert "FileNotFoundError, PermissionError, IsADirectoryError" in \
        ln.resume_from_checkpoint.__doc__
    m = _model()
    with pytest.raises(FileNotFoundError):
        ln.resume_from_checkpoint(tmp_path / "missing.npz", m, ln.optim.Adam(m))


# -- strict bool flags ----------------------------------------------------------------------

@pytest.mark.parametrize("build, name", [
    (lambda v: ln.LSTM(2, 3, bias=v), "bias"),
    (lambda v: ln.LSTM(2, 3, batch_first=v), "batch_first"),
    (lambda v: ln.RNN(2, 3, bidirectional=v), "bidirectional"),
    (lambda v: ln.LSTMCell(2, 3, bias=v), "bias"),
    (lambda v: ln.Linear(2, 3, bias=v), "bias"),
    (lambda v: ln.LastStep(batch_first=v), "batch_first"),
    (lambda v: ln.LastStep(bidirectional=v), "bidirectional"),
    (lambda v: ln.Sequential(ln.Linear(2, 3), stateful=v), "stateful"),
])
def test_bool_flags_are_strict(build, name):
    for bad in ("no", [0], 1, None):
        with pytest.raises(TypeError, match=name):
            build(bad)
    build(False)
    build(np.bool_(True))
