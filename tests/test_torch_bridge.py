"""lstm_native.torch: our kernels as torch.nn modules, against torch.nn's own.

Every module is built beside its torch.nn twin from the same torch seed (the same
initial weights: the draws are torch's), run on the same inputs, and compared on the
outputs, final states and the gradients autograd gives of the input, the initial
states and every parameter; gradcheck checks our backward against finite differences.
"""
from __future__ import annotations

import copy
import json
import io
import itertools

import numpy as np
import pytest

from conftest import TORCH_RTOL, max_rel_err

torch = pytest.importorskip("torch")
lnt = pytest.importorskip("lstm_native.torch")

from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

# torch.nn.LSTM's own notice when it computes a projection (the twins' reference runs).
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

#: name -> (our class, torch's class, constructor keywords)
LAYERS = {
    "lstm": (lnt.LSTM, torch.nn.LSTM, {}),
    "lstm-proj": (lnt.LSTM, torch.nn.LSTM, {"proj_size": 3}),
    "gru": (lnt.GRU, torch.nn.GRU, {}),
    "rnn-tanh": (lnt.RNN, torch.nn.RNN, {}),
    "rnn-relu": (lnt.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
}
CELLS = {
    "lstm": (lnt.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (lnt.GRUCell, torch.nn.GRUCell, {}),
    "rnn-tanh": (lnt.RNNCell, torch.nn.RNNCell, {}),
    "rnn-relu": (lnt.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
}
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _twins(ours, theirs, *args, seed=0, **kwargs):
    """Our module and torch's, each built right after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    a = ours(*args, **kwargs)
    torch.manual_seed(seed)
    b = theirs(*args, **kwargs)
    return a, b


def _as_tuple(states):
    return states if isinstance(states, tuple) else (states,)


def _run(module, x, hx=None, lengths=None, batch_first=False, weights=None):
    """Everything a call gives and the gradients of a loss that reads every output:
    sum(out·w_out) + Σ sum(state_n·w_state) (fixed random weights)."""
    x = x.clone().requires_grad_(True)
    hx = None if hx is None else tuple(s.clone().requires_grad_(True) for s in hx)
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    if hx is None:
        out, finals = module(inp)
    else:
        out, finals = module(inp, hx if len(hx) == 2 else hx[0])
    if isinstance(out, PackedSequence):
        assert isinstance(inp, PackedSequence)
        assert torch.equal(out.batch_sizes, inp.batch_sizes)
        assert torch.equal(out.sorted_indices, inp.sorted_indices)
        out = out.data
    finals = _as_tuple(finals)
    gen = torch.Generator().manual_seed(99)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum()
               for t in (out, *finals))
    module.zero_grad()
    loss.backward()
    got = {"out": out, **{f"final{i}": f for i, f in enumerate(finals)}, "dx": x.grad}
    for i, s in enumerate(hx or ()):
        got[f"dhx{i}"] = s.grad
    got.update({f"d_{name}": p.grad for name, p in module.named_parameters()})
    return got


def _assert_same(got, want, dtype, rtol=None):
    assert set(got) == set(want)
    rtol = rtol or TORCH_RTOL[np.dtype("float64" if dtype == torch.float64 else "float32")]
    for key in want:
        err = max_rel_err(got[key].detach().numpy(), want[key].detach().numpy())
        assert err <= rtol, f"{key}: {err:.3g}"


GRID = [dict(kind=kind, L=L, bi=bi, bf=bf, packed=packed, hx=hx)
        for kind, L, bi, bf, packed, hx in itertools.product(
            LAYERS, (1, 2), (False, True), (False, True), (False, True), (False, True))]


def _grid_id(c):
    return "-".join([c["kind"], f"L{c['L']}"] + [k for k in ("bi", "bf", "packed", "hx")
                                                  if c[k]])


def _inputs(c, dtype, T=5, N=4, I=3, H=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((N, T, I) if c["bf"] else (T, N, I), generator=gen, dtype=dtype)
    lengths = torch.tensor([3, T, 1, 4][:N]) if c["packed"] else None
    hx = None
    if c["hx"]:
        D = 2 if c["bi"] else 1
        sizes = [3 if c["kind"] == "lstm-proj" else H] + ([H] if "lstm" in c["kind"] else [])
        hx = tuple(torch.randn((D * c["L"], N, s), generator=gen, dtype=dtype) for s in sizes)
    return x, hx, lengths


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("c", GRID, ids=_grid_id)
def test_layers_match_torch(c, dtype):
    ours, theirs, kwargs = LAYERS[c["kind"]]
    a, b = _twins(ours, theirs, 3, 4, c["L"], batch_first=c["bf"], bidirectional=c["bi"],
                  dtype=dtype, **kwargs)
    x, hx, lengths = _inputs(c, dtype)
    _assert_same(_run(a, x, hx, lengths, c["bf"]), _run(b, x, hx, lengths, c["bf"]), dtype)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("hx", [False, True])
def test_unbatched_matches_torch(kind, bi, hx):
    ours, theirs, kwargs = LAYERS[kind]
    a, b = _twins(ours, theirs, 3, 4, 2, bidirectional=bi, dtype=torch.float64, **kwargs)
    c = dict(kind=kind, L=2, bi=bi, bf=False, packed=False, hx=hx)
    x, states, _ = _inputs(c, torch.float64, N=1)
    x = x[:, 0]
    states = None if states is None else tuple(s[:, 0] for s in states)
    got, want = _run(a, x, states), _run(b, x, states)
    width = (2 if bi else 1) * (3 if kind == "lstm-proj" else 4)
    assert got["out"].shape == want["out"].shape == (5, width)
    _assert_same(got, want, torch.float64)


@pytest.mark.parametrize("kind", LAYERS)
def test_dropout_in_eval_mode_matches_torch(kind):
    ours, theirs, kwargs = LAYERS[kind]
    a, b = _twins(ours, theirs, 3, 4, 3, dropout=0.5, bidirectional=True, dtype=torch.float64,
                  **kwargs)
    a.eval()
    b.eval()
    x, hx, _ = _inputs(dict(kind=kind, L=3, bi=True, bf=False, packed=False, hx=True),
                       torch.float64)
    _assert_same(_run(a, x, hx), _run(b, x, hx), torch.float64)


def test_dropout_in_training_draws_from_torchs_generator():
    lstm = lnt.LSTM(3, 4, 2, dropout=0.5, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outs.append(lstm(x)[0])
    assert torch.equal(outs[0], outs[1])  # torch.manual_seed makes it reproducible
    assert not torch.equal(outs[0], outs[2])
    lstm.eval()
    assert not torch.equal(outs[0], lstm(x)[0])  # dropout was on in training mode
    # No dropout, nothing drawn: torch's generator is where it was.
    plain = lnt.LSTM(3, 4, 2, dtype=torch.float64)
    state = torch.get_rng_state()
    plain(x)
    assert torch.equal(torch.get_rng_state(), state)
    with torch.no_grad():  # training mode without autograd drops too
        torch.manual_seed(0)
        assert torch.equal(lstm.train()(x)[0], outs[0])


def test_dropout_gradients_go_through_the_masks():
    """With dropout the gradients are those of the masked network: p = 1 drops the
    first layer's output entirely, so layer 0 gets no gradient and the output does not
    depend on x."""
    lstm = lnt.LSTM(3, 4, 2, dropout=1.0, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out, _ = lstm(x)
    out.sum().backward()
    assert torch.count_nonzero(x.grad) == 0
    assert torch.count_nonzero(lstm.weight_ih_l0.grad) == 0
    assert torch.count_nonzero(lstm.weight_hh_l1.grad) > 0


CELL_GRID = [dict(kind=kind, batched=batched, hx=hx)
             for kind, batched, hx in itertools.product(CELLS, (True, False), (True, False))]


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("c", CELL_GRID, ids=lambda c: "-".join(
    [c["kind"]] + [k for k in ("batched", "hx") if c[k]]))
def test_cells_match_torch(c, dtype):
    ours, theirs, kwargs = CELLS[c["kind"]]
    a, b = _twins(ours, theirs, 3, 5, dtype=dtype, **kwargs)
    gen = torch.Generator().manual_seed(2)
    shape = (4,) if c["batched"] else ()
    x = torch.randn(*shape, 3, generator=gen, dtype=dtype)
    hx = None
    if c["hx"]:
        hx = tuple(torch.randn(*shape, 5, generator=gen, dtype=dtype)
                   for _ in range(2 if c["kind"] == "lstm" else 1))

    def run(cell):
        xr = x.clone().requires_grad_(True)
        states = None if hx is None else tuple(s.clone().requires_grad_(True) for s in hx)
        new = cell(xr, None if states is None else
                   (states if len(states) == 2 else states[0]))
        new = _as_tuple(new)
        loss = sum((s * (i + 2) * s).sum() for i, s in enumerate(new))
        cell.zero_grad()
        loss.backward()
        got = {f"new{i}": s for i, s in enumerate(new)}
        got["dx"] = xr.grad
        got.update({f"dhx{i}": s.grad for i, s in enumerate(states or ())})
        got.update({f"d_{n}": p.grad for n, p in cell.named_parameters()})
        return got

    _assert_same(run(a), run(b), dtype)


@pytest.mark.parametrize("kind", LAYERS)
def test_gradcheck(kind):
    ours, _, kwargs = LAYERS[kind]
    torch.manual_seed(3)
    m = ours(2, 4, 2, bidirectional=True, batch_first=True, dtype=torch.float64, **kwargs)
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    P = 3 if kind == "lstm-proj" else 4
    sizes = [P] + ([4] if "lstm" in kind else [])
    hx = [torch.randn(4, 2, s, dtype=torch.float64, requires_grad=True) for s in sizes]
    params = list(m.parameters())
    names = [n for n, _ in m.named_parameters()]

    def f(x, *tensors):
        states, weights = tensors[:len(hx)], tensors[len(hx):]
        out, finals = torch.func.functional_call(m, dict(zip(names, weights)),
                                                 (x, states if len(states) == 2 else states[0]))
        return (out, *_as_tuple(finals))

    assert torch.autograd.gradcheck(f, (x, *hx, *params), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_gradcheck_packed(kind):
    ours, _, kwargs = LAYERS[kind]
    torch.manual_seed(4)
    m = ours(2, 4, 1, bidirectional=True, dtype=torch.float64, **kwargs)
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)

    def f(x):
        out, finals = m(pack_padded_sequence(x, torch.tensor([2, 4, 1]), enforce_sorted=False))
        return (out.data, *_as_tuple(finals))

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("kind", CELLS)
def test_gradcheck_cells(kind):
    ours, _, kwargs = CELLS[kind]
    torch.manual_seed(5)
    cell = ours(3, 4, dtype=torch.float64, **kwargs)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    hx = [torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
          for _ in range(2 if kind == "lstm" else 1)]
    names = [n for n, _ in cell.named_parameters()]

    def f(x, *tensors):
        states, weights = tensors[:len(hx)], tensors[len(hx):]
        return torch.func.functional_call(cell, dict(zip(names, weights)),
                                          (x, states if len(states) == 2 else states[0]))

    assert torch.autograd.gradcheck(f, (x, *hx, *cell.parameters()), eps=1e-6, atol=1e-8,
                                    rtol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_state_dict_both_ways(kind):
    ours, theirs, kwargs = LAYERS[kind]
    a = ours(3, 4, 2, bidirectional=True, **kwargs)
    b = theirs(3, 4, 2, bidirectional=True, **kwargs)
    assert list(a.state_dict()) == list(b.state_dict())
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]
    a.load_state_dict(b.state_dict())
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        assert max_rel_err(a(x)[0].numpy(), b(x)[0].numpy()) <= 1e-6
        for p in b.parameters():
            p.add_(0.25)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert max_rel_err(a(x)[0].numpy(), b(x)[0].numpy()) <= 1e-6


@pytest.mark.parametrize("kind", LAYERS)
def test_same_initial_weights_as_torch(kind):
    ours, theirs, kwargs = LAYERS[kind]
    a, b = _twins(ours, theirs, 3, 4, 2, seed=7, **kwargs)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb) and isinstance(pa, torch.nn.Parameter)
    assert isinstance(a, theirs)


def test_calls_before_one_backward_keep_their_own_activations():
    """Two inputs through one encoder, one backward: each call's activations live in
    its own graph node, so the gradients are the sum of both, as torch's."""
    dtype = torch.float64
    a, b = _twins(lnt.LSTM, torch.nn.LSTM, 3, 4, 2, bidirectional=True, dtype=dtype)
    x1, x2 = torch.randn(5, 2, 3, dtype=dtype), torch.randn(7, 3, 3, dtype=dtype)

    def run(m):
        m.zero_grad()
        out1, _ = m(x1)
        out2, (h2, _) = m(x2)
        (out1.square().sum() + 2 * out2.sum() + h2.sum()).backward()
        return {n: p.grad.clone() for n, p in m.named_parameters()}

    _assert_same(run(a), run(b), dtype)
    # The module itself keeps nothing between forward and backward.
    out, _ = a(x1)
    assert a._native.layer._cache is None
    out.sum().backward()


def test_unrolled_cell_matches_torch():
    dtype = torch.float64
    a, b = _twins(lnt.LSTMCell, torch.nn.LSTMCell, 3, 4, dtype=dtype)
    x = torch.randn(6, 2, 3, dtype=dtype)

    def run(cell):
        cell.zero_grad()
        h, c, loss = None, None, 0
        for x_t in x:
            h, c = cell(x_t, None if h is None else (h, c))
            loss = loss + h.square().sum()
        loss.backward()
        return {n: p.grad.clone() for n, p in cell.named_parameters()}

    _assert_same(run(a), run(b), dtype)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_backward_twice_through_one_call(dropout):
    """The second backward recomputes the activations the first one spent, with the
    same dropout masks: it adds the same gradients again."""
    lstm = lnt.LSTM(3, 4, 2, dropout=dropout, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out, _ = lstm(x)
    out.square().sum().backward(retain_graph=True)
    first = [x.grad.clone()] + [p.grad.clone() for p in lstm.parameters()]
    out.square().sum().backward()
    second = [x.grad] + [p.grad for p in lstm.parameters()]
    for a, b in zip(first, second):
        assert torch.equal(2 * a, b)
    cell = lnt.GRUCell(3, 4, dtype=torch.float64)
    h = cell(x[0])
    h.sum().backward(retain_graph=True)
    once = cell.weight_hh.grad.clone()
    h.sum().backward()
    assert torch.equal(2 * once, cell.weight_hh.grad)



def test_backward_with_create_graph_refuses_a_second_differentiation():
    """With create_graph=True the gradients are torch's, and differentiating them
    again is refused (our BPTT has no backward of its own), as `once_differentiable`
    says; without it no graph is made of them."""
    a, b = _twins(lnt.LSTM, torch.nn.LSTM, 3, 4, 2, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    got, want = (torch.autograd.grad(m(x)[0].square().sum(), list(m.parameters()),
                                     create_graph=True) for m in (a, b))
    for g, w in zip(got, want, strict=True):
        assert max_rel_err(g.detach().numpy(), w.detach().numpy()) <= 1e-12
    with pytest.raises(RuntimeError, match="differentiate twice"):
        got[1].sum().backward()
    plain = torch.autograd.grad(a(x)[0].square().sum(), list(a.parameters()))
    assert all(g.grad_fn is None for g in plain)

def test_parameter_changed_before_backward_is_torchs_error():
    lstm = lnt.LSTM(3, 4)
    out, _ = lstm(torch.randn(5, 2, 3))
    with torch.no_grad():
        lstm.weight_hh_l0.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_input_changed_before_backward_is_torchs_error():
    """Our layer reads the input again in backward without a copy of its own (autograd
    keeps x for backward and refuses to use it once it was changed in place): refill
    the input's buffer (a data loader's) and the backward says so, as torch's does."""
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for module in _twins(lnt.LSTM, torch.nn.LSTM, 3, 4, dtype=torch.float64):
        out, _ = module(x.requires_grad_(False))
        x.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


@pytest.mark.parametrize("convert", [lambda m: m.double(), lambda m: m.to(torch.float64)],
                         ids=["double", "to"])
def test_converted_to_float64(convert):
    a, b = _twins(lnt.GRU, torch.nn.GRU, 3, 4, 2, bidirectional=True)
    x, hx, lengths = _inputs(dict(kind="gru", L=2, bi=True, bf=False, packed=True, hx=True),
                             torch.float32)
    a(x)  # a first float32 call: buffers of that dtype
    convert(a)
    convert(b)
    assert a.weight_ih_l0.dtype == torch.float64
    x, hx = x.double(), tuple(s.double() for s in hx)
    got, want = _run(a, x, hx, lengths), _run(b, x, hx, lengths)
    assert got["out"].dtype == torch.float64
    _assert_same(got, want, torch.float64)
    convert(a).float()
    assert a(x.float())[0].dtype == torch.float32


def test_trains_in_a_torch_model_with_torchs_optimizer():
    """An encoder with a Linear head in a torch.nn.Module, Adam for a few steps: the
    same parameters as with torch.nn.LSTM."""
    dtype = torch.float64

    class Model(torch.nn.Module):
        def __init__(self, lstm_cls):
            super().__init__()
            self.lstm = lstm_cls(3, 5, 2, batch_first=True, dtype=dtype)
            self.head = torch.nn.Linear(5, 1, dtype=dtype)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    models = []
    for cls in (lnt.LSTM, torch.nn.LSTM):
        torch.manual_seed(0)
        model = Model(cls)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(5):
            x = torch.randn(4, 6, 3, generator=gen, dtype=dtype)
            y = x.sum(dim=(1, 2))[:, None]
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0]
        models.append(model)
    for (n, p), (_, q) in zip(models[0].named_parameters(), models[1].named_parameters()):
        assert max_rel_err(p.detach().numpy(), q.detach().numpy()) <= 1e-10, n


def test_gradient_memory_is_reused_only_when_no_tensor_holds_it():
    """A backward takes the last one's gradient arrays again once autograd let go of
    them (`.grad` set to None since); a gradient someone still holds is never
    overwritten."""
    dtype = torch.float64
    a, b = _twins(lnt.LSTM, torch.nn.LSTM, 3, 4, 2, dtype=dtype)
    xs = [torch.randn(5, 2, 3, dtype=dtype) for _ in range(3)]
    pointers, kept = [], None
    for x in xs:
        for m in (a, b):
            m.zero_grad()  # set_to_none
            m(x)[0].square().sum().backward()
        for p, q in zip(a.parameters(), b.parameters()):
            assert max_rel_err(p.grad.numpy(), q.grad.numpy()) <= 1e-12
        pointers.append(a.weight_hh_l1.grad.data_ptr())
        if kept is None:
            kept = a.weight_hh_l1.grad, a.weight_hh_l1.grad.clone()
    assert pointers[1] == pointers[2]  # reused: nobody held the second step's
    assert pointers[0] not in pointers[1:]  # held by `kept`
    assert torch.equal(kept[0], kept[1])


def test_sequential_and_no_grad():
    """In an nn.Sequential (a layer whose output is a tuple needs a picker); under
    no_grad the call keeps nothing and equals the training call's output."""
    class Last(torch.nn.Module):
        def forward(self, pair):
            return pair[0][-1]

    torch.manual_seed(0)
    model = torch.nn.Sequential(lnt.RNN(3, 4), Last(), torch.nn.Linear(4, 2))
    x = torch.randn(5, 2, 3)
    y = model(x)
    with torch.no_grad():
        assert torch.equal(model(x), y)
    y.sum().backward()
    assert model[0].weight_hh_l0.grad is not None


def _leaves(out):
    """The tensors of a call's output, nested tuples flattened."""
    return [out] if isinstance(out, torch.Tensor) else [t for o in out for t in _leaves(o)]


@pytest.mark.parametrize("cls, shape", [(lnt.LSTM, (5, 2, 3)), (lnt.GRU, (5, 2, 3)),
                                        (lnt.LSTMCell, (2, 3)), (lnt.RNNCell, (2, 3))])
@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_without_autograd_a_training_module_runs_inference(cls, shape, context):
    """Parameters that require gradients do not make a call without autograd keep
    activations for a backward that cannot come: our layer runs its inference path
    (no activations kept, the inference kernels), with the same output."""
    module = cls(3, 4, dtype=torch.float64)
    x = torch.randn(*shape, dtype=torch.float64)
    with_grad = _leaves(module(x))
    assert module._native.layer.training
    with context():
        without = _leaves(module(x))
    assert not module._native.layer.training
    for a, b in zip(with_grad, without, strict=True):
        assert max_rel_err(a.detach().numpy(), b.numpy()) <= 1e-12


def test_only_parameters_need_gradients():
    a, b = _twins(lnt.LSTM, torch.nn.LSTM, 3, 4, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for m in (a, b):
        m(x)[0].sum().backward()
    for p, q in zip(a.parameters(), b.parameters()):
        assert max_rel_err(p.grad.numpy(), q.grad.numpy()) <= 1e-12



@pytest.mark.parametrize("kind, read", [
    *itertools.product(["lstm", "lstm-proj"], ["out", "h_n", "c_n", "h_n and c_n"]),
    ("gru", "out"), ("gru", "h_n")])
def test_gradients_when_the_loss_reads_some_outputs(kind, read):
    """Autograd hands our backward no gradient for an output the loss does not read
    (none made into zeros): out alone, h_n alone (no gradient on out), c_n alone (h_n,
    of another width with a projection, gets none): every gradient is still torch's."""
    ours, theirs, kw = LAYERS[kind]
    a, b = _twins(ours, theirs, 3, 4, 2, dtype=torch.float64, **kw)
    x, hx, _ = _inputs({"kind": kind, "L": 2, "bi": False, "bf": False, "packed": False,
                        "hx": True}, torch.float64)
    grads = []
    for m in (a, b):
        xr = x.clone().requires_grad_(True)
        states = tuple(s.clone().requires_grad_(True) for s in hx)
        out, finals = m(xr, states if len(states) == 2 else states[0])
        finals = _as_tuple(finals)
        loss = {"out": out.square().sum(), "h_n": finals[0].square().sum(),
                "c_n": finals[-1].square().sum(),
                "h_n and c_n": finals[0].sum() + finals[-1].square().sum()}[read]
        m.zero_grad()
        loss.backward()
        grads.append([xr.grad, *(s.grad for s in states), *(p.grad for p in m.parameters())])
    for got, want in zip(*grads, strict=True):
        assert max_rel_err(got.numpy(), want.numpy()) <= 1e-12


def test_inputs_without_requires_grad_get_no_gradient():
    """x and hx that do not require grad and a frozen parameter get None; the gradients
    that are needed are torch's."""
    a, b = _twins(lnt.LSTM, torch.nn.LSTM, 3, 4, 2, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    hx = (torch.randn(2, 2, 4, dtype=torch.float64), torch.randn(2, 2, 4, dtype=torch.float64))
    for m in (a, b):
        m.weight_hh_l1.requires_grad_(False)
        out, (h, c) = m(x, hx)
        (out.square().sum() + h.sum() + c.sum()).backward()
    assert x.grad is None and hx[0].grad is None and hx[1].grad is None
    assert a.weight_hh_l1.grad is None
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        if name != "weight_hh_l1":
            assert max_rel_err(p.grad.numpy(), q.grad.numpy()) <= 1e-12, name

def test_copies_and_pickles():
    lstm = lnt.LSTM(3, 4, 2)
    x = torch.randn(5, 2, 3)
    twin = copy.deepcopy(lstm)
    buffer = io.BytesIO()
    torch.save(lstm, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        want = lstm(x)[0]
        for m in (twin, loaded):
            assert torch.equal(m(x)[0], want)
            # Their own parameters, not the original's.
            m.weight_ih_l0.add_(1)
            assert not torch.equal(m(x)[0], want)


def test_n_threads_gives_the_same_result():
    a = lnt.LSTM(3, 8, 2, bidirectional=True, n_threads=1, dtype=torch.float64)
    b = lnt.LSTM(3, 8, 2, bidirectional=True, n_threads=2, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 5, 3, dtype=torch.float64)
    assert torch.equal(a(x)[0], b(x)[0])



def test_blas_cap_sets_and_restores_what_threadpoolctl_would():
    """Our layers' calls cap BLAS at one thread (`single_threaded_blas`, through
    threadpoolctl's library controllers without its `limit`): the counts inside are
    those of threadpoolctl's ``limit(limits=1, user_api="blas")``, nested calls keep
    the cap, and the last one out restores every pool's count."""
    from lstm_native._parallel import _controller, single_threaded_blas

    controller = _controller()

    def counts():
        return [lib["num_threads"] for lib in controller.info()]

    # Two BLAS threads to start from, so that the cap shows on a one-core machine too.
    with controller.limit(limits=2, user_api="blas"):
        before = counts()
        assert 2 in before
        with controller.limit(limits=1, user_api="blas"):
            capped = counts()
        assert counts() == before
        with single_threaded_blas():
            assert counts() == capped
            with single_threaded_blas():
                assert counts() == capped
            assert counts() == capped
        assert counts() == before

# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [lnt.LSTM, lnt.GRU, lnt.RNN, lnt.LSTMCell, lnt.GRUCell,
                                 lnt.RNNCell])
@pytest.mark.parametrize("device", ["meta", "cuda", torch.device("meta")])
def test_other_devices_are_refused(cls, device):
    with pytest.raises(ValueError, match="runs on the CPU"):
        cls(3, 4, device=device)


@pytest.mark.parametrize("cls", [lnt.LSTM, lnt.GRU, lnt.RNN, lnt.LSTMCell, lnt.GRUCell,
                                 lnt.RNNCell])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int32])
def test_other_dtypes_are_refused(cls, dtype):
    with pytest.raises(TypeError, match="float32 or torch.float64"):
        cls(3, 4, dtype=dtype)


def test_cpu_device_is_accepted():
    lnt.LSTM(3, 4, device="cpu")
    lnt.GRUCell(3, 4, device=torch.device("cpu"))


def test_converted_to_another_device_or_dtype_is_refused_at_the_call():
    lstm = lnt.LSTM(3, 4).to("meta")
    with pytest.raises(RuntimeError, match="runs on the CPU.*meta"):
        lstm(torch.randn(5, 2, 3, device="meta"))
    cell = lnt.LSTMCell(3, 4).half()
    with pytest.raises(TypeError, match="float32 or float64.*torch.float16"):
        cell(torch.randn(2, 3).half())
    with pytest.raises(RuntimeError, match="input is on meta"):
        lnt.GRU(3, 4)(torch.randn(5, 2, 3, device="meta"))


def test_torchs_argument_errors():
    lstm = lnt.LSTM(3, 4)
    with pytest.raises(ValueError, match="input dtype"):
        lstm(torch.randn(5, 2, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="input_size"):
        lstm(torch.randn(5, 2, 2))
    with pytest.raises(RuntimeError, match="Expected hidden"):
        lstm(torch.randn(5, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(ValueError, match="2D or 3D"):
        lstm(torch.randn(5))
    with pytest.raises(ValueError, match="input dtype"):
        lnt.RNNCell(3, 4)(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="proj_size"):
        lnt.LSTM(3, 4, proj_size=4)


# -- the training-loop benchmark ------------------------------------------------------

def test_torch_loop_benchmark_on_a_tiny_config(monkeypatch, tmp_path, capsys):
    from lstm_native.bench import torch_loop
    from lstm_native.bench.configs import Config
    from lstm_native.bench.timing import Schedule

    tiny = Config("T1", batch=2, steps=3, input_size=4, hidden_size=5, num_layers=2,
                  bidirectional=True)
    rows = torch_loop.measure([tiny], Schedule.quick(), n_threads=1)
    (row,) = rows
    assert row.cfg is tiny
    assert min(row.torch_step, row.our_step, row.bridge, row.native, row.autograd) > 0
    assert row.speedup == row.torch_step / row.our_step
    assert row.autograd_cost == row.autograd / row.native - 1
    table = torch_loop.format_table(rows)
    assert "| T1 | B=2 T=3 I=4 H=5 L=2 bidirectional |" in table
    assert "| autograd floor |" in table.splitlines()[0]
    assert table.splitlines()[2].endswith(f"| {row.autograd_cost * 100:+.1f}% |")

    monkeypatch.setattr(torch_loop, "CONFIGS", {"T1": tiny})
    path = tmp_path / "loop.json"
    assert torch_loop.main(["--configs", "T1", "--quick", "--threads", "1",
                            "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 threads" in out and "| T1 |" in out
    assert "threads: torch intra-op 1" in out and "OpenMP runtimes" in out
    (saved,) = json.loads(path.read_text())
    assert saved["config"] == "T1" and saved["speedup"] > 0
    assert saved["autograd_cost"] == saved["autograd"] / saved["native"] - 1


def test_torch_loop_benchmark_checks_agreement_before_timing():
    from lstm_native.bench import torch_loop
    from lstm_native.bench.configs import Config

    tiny = Config("T1", batch=2, steps=3, input_size=4, hidden_size=5)
    theirs, ours, _, x, target = torch_loop._problem(tiny, np.dtype(np.float32), 1)
    torch_loop._check_agreement(theirs, ours, x, target, np.dtype(np.float32))
    with torch.no_grad():
        ours.weight_hh_l0.add_(0.1)
    with pytest.raises(ValueError, match="differs from torch.nn.LSTM"):
        torch_loop._check_agreement(theirs, ours, x, target, np.dtype(np.float32))
