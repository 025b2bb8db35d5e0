"""Module.children(): containers of any class reach their sub-modules (train/eval, the
checks of save_checkpoint); every block words the eval-mode backward error alike."""
import numpy as np
import pytest

from lstm_native import (LSTM, RNN, Dropout, LastStep, Linear, LSTMCell, Module, Sequential,
                         load_model, register_module, save_checkpoint)
from lstm_native.module import EVAL_MODE_BACKWARD


@register_module
class ChildrenTestChain(Module):
    """A container that is not a Sequential: second(first(x))."""

    def __init__(self, first, second):
        super().__init__(first.dtype)
        self.first, self.second = first, second
        for prefix, child in (("first", first), ("second", second)):
            self._params.update({f"{prefix}.{k}": v for k, v in child.parameters().items()})
            self.grads.update({f"{prefix}.{k}": v for k, v in child.grads.items()})

    def children(self):
        return (self.first, self.second)

    def forward(self, x):
        return self.second(self.first(x))

    def get_config(self):
        return {key: {"type": type(child).__name__, "config": child.get_config()}
                for key, child in (("first", self.first), ("second", self.second))}

    @classmethod
    def from_config(cls, config, build_module):
        return cls(build_module(config["first"]), build_module(config["second"]))


class UnregisteredLinear(Linear):
    pass


def test_plain_blocks_have_no_children():
    assert Linear(2, 3).children() == ()
    assert LSTM(2, 3).children() == ()


def test_sequential_children_are_its_layers():
    layers = (LSTM(1, 4), LastStep(), Linear(4, 1))
    assert Sequential(*layers).children() == layers


def test_eval_and_train_reach_the_children_of_any_container():
    chain = ChildrenTestChain(Linear(2, 3), Linear(3, 1))
    chain.eval()
    assert not chain.training and not chain.first.training and not chain.second.training
    model = Sequential(chain, Linear(1, 1))
    model.train()
    assert chain.training and chain.first.training and chain.second.training


def test_save_checks_the_children_of_any_container(tmp_path):
    chain = ChildrenTestChain(Linear(2, 3), UnregisteredLinear(3, 1))
    for model in (chain, Sequential(Linear(2, 2), chain)):
        path = tmp_path / "model.npz"
        with pytest.raises(ValueError, match="UnregisteredLinear is not a registered"):
            save_checkpoint(path, model)
        assert not path.exists()


def test_a_registered_container_round_trips(tmp_path):
    model = ChildrenTestChain(Linear(2, 3, seed=0), Linear(3, 1, seed=1)).eval()
    save_checkpoint(tmp_path / "chain.npz", model)
    restored = load_model(tmp_path / "chain.npz").eval()
    assert type(restored) is ChildrenTestChain
    assert sorted(restored.state_dict()) == sorted(model.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 2))
    np.testing.assert_array_equal(restored(x), model(x))


@pytest.mark.parametrize("make, x", [
    (lambda: LSTM(2, 3), np.zeros((4, 1, 2))),
    (lambda: RNN(2, 3), np.zeros((4, 1, 2))),
    (lambda: LSTMCell(2, 3), np.zeros((1, 2))),
    (lambda: Linear(2, 3), np.zeros((1, 2))),
    (lambda: Dropout(0.5), np.zeros((1, 2))),
    (lambda: LastStep(), np.zeros((4, 1, 2))),
    (lambda: Sequential(LSTM(2, 3), LastStep(), Linear(3, 1)), np.zeros((4, 1, 2))),
], ids=["LSTM", "RNN", "LSTMCell", "Linear", "Dropout", "LastStep", "Sequential"])
def test_eval_mode_backward_is_one_message(make, x):
    block = make().eval()
    out = block(x)
    out = out[0] if isinstance(out, tuple) else out
    with pytest.raises(RuntimeError) as caught:
        block.backward(np.ones_like(out))
    assert str(caught.value) == EVAL_MODE_BACKWARD
