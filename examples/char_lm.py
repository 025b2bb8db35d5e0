"""A character-level language model on text that ships with Python, then samples from it.

    python examples/char_lm.py                       # about half a minute on one core
    python examples/char_lm.py --epochs 30 --hidden 256 --temperature 0.5

The text is the interactive help of Python itself: the `pydoc_data.topics` module of
the standard library holds the help texts of the statements and operators
(``help("assert")``), about half a million characters.

The model reads one character at a time (one-hot) and predicts the next:
Sequential(LSTM(V, H), Linear(H, V)) on logits, with cross-entropy. The text is cut into
`--streams` parallel streams, each read from start to end; `fit(..., tbptt=k)` trains on
chunks of k characters, carrying (h, c) from one chunk of a stream to the next
(truncated backpropagation through time). To generate, the trained weights go into an
`LSTMCell`, which runs one step at a time from a prompt; each next character is drawn
from softmax(logits / temperature): low temperatures pick the likeliest characters,
high ones take more risks.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from pydoc_data.topics import topics

import lstm_native as ln


def one_hot(ids: np.ndarray, vocab: int) -> np.ndarray:
    out = np.zeros(ids.shape + (vocab,), np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def streams(ids: np.ndarray, n: int, vocab: int):
    """The text as n parallel streams: x (n, L, V) one-hot, y (n, L) the next ids."""
    length = (len(ids) - 1) // n
    x = ids[:n * length].reshape(n, length)
    y = ids[1:n * length + 1].reshape(n, length)
    return one_hot(x, vocab), y


def sample(cell, head, prompt_ids, length, vocab, temperature, rng):
    """Run the cell over the prompt, then draw `length` characters one at a time."""
    state = None
    for i in prompt_ids:
        state = cell(one_hot(np.array([i]), vocab), state)
    out = []
    for _ in range(length):
        logits = head(state[0])[0].astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        i = rng.choice(vocab, p=p / p.sum())
        out.append(i)
        state = cell(one_hot(np.array([i]), vocab), state)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chars", type=int, default=200_000,
                        help="characters of the help texts to train on (200000)")
    parser.add_argument("--hidden", type=int, default=128, help="LSTM size (128)")
    parser.add_argument("--epochs", type=int, default=8, help="passes over the text (8)")
    parser.add_argument("--streams", type=int, default=32,
                        help="parallel streams: the batch size (32)")
    parser.add_argument("--tbptt", type=int, default=64,
                        help="characters per truncated-BPTT chunk (64)")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (0.01)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="below 1: safer choices, above: more surprises (0.8)")
    parser.add_argument("--sample", type=int, default=300, help="characters to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true",
                        help="end with one line: the figures as a JSON object")
    args = parser.parse_args()

    text = "\n".join(topics[key] for key in sorted(topics))[:args.chars]
    chars = sorted(set(text))
    vocab = len(chars)
    index = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([index[ch] for ch in text])
    split = int(0.9 * len(ids))                      # the last 10% for validation
    x, y = streams(ids[:split], args.streams, vocab)
    x_val, y_val = streams(ids[split:], 4, vocab)
    print(f"{len(text)} characters of Python's help texts, {vocab} distinct; "
          f"{args.streams} streams of {x.shape[1]} for training")

    lstm = ln.LSTM(vocab, args.hidden, batch_first=True, seed=args.seed, n_threads=1)
    head = ln.Linear(args.hidden, vocab, seed=args.seed + 1)
    model = ln.Sequential(lstm, head)
    print(f"a uniform guess scores a loss of log({vocab}) = {math.log(vocab):.2f} "
          "(nats per character)")
    start = time.perf_counter()
    history = ln.fit(model, x, y, loss="cross_entropy",
                     optimizer=ln.optim.Adam(model, lr=args.lr), epochs=args.epochs,
                     batch_size=args.streams, tbptt=args.tbptt, shuffle=False,
                     stateful_batches=True, clip_norm=5.0, validation_data=(x_val, y_val),
                     seed=args.seed, verbose=2)
    seconds = time.perf_counter() - start

    # Generation, one step at a time: the LSTM's layer-0 weights in an LSTMCell.
    cell = ln.LSTMCell(vocab, args.hidden).eval()
    weights = lstm.state_dict()          # weight_ih_l0, ... -> weight_ih, ...
    cell.load_state_dict({name.removesuffix("_l0"): w for name, w in weights.items()})
    model.eval()
    prompt = "The "
    out = sample(cell, head, [index[ch] for ch in prompt], args.sample, vocab,
                 args.temperature, np.random.default_rng(args.seed))
    print(f"\nsample at temperature {args.temperature}:\n")
    print(prompt + "".join(chars[i] for i in out))
    if args.json:
        print(json.dumps({"uniform_loss": math.log(vocab),
                          "first_val_loss": float(history["val_loss"][0]),
                          "last_val_loss": float(history["val_loss"][-1]),
                          "epochs": len(history["epoch"]), "seconds": seconds}))


if __name__ == "__main__":
    main()
