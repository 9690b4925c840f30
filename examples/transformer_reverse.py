"""A one-layer transformer encoder learns to sort (or reverse) short digit sequences.

Each input is a sequence of L digits; the target at position i is the i-th smallest digit
(``--task sort``) or the digit at position L-1-i (``--task reverse``). Every output position
must look at the whole sequence, which self-attention does in one step; an MLP given the
same one-hot sequence and the same training set (``--model mlp``) is the baseline.
Sequence accuracy counts a sequence right only if every position is right.

    OPENBLAS_NUM_THREADS=1 python examples/transformer_reverse.py --task sort
    OPENBLAS_NUM_THREADS=1 python examples/transformer_reverse.py --task sort --model mlp
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import neuralab as nl
from neuralab import functional as F
from neuralab import nn


def make_task(task: str, n: int, length: int, rng: np.random.Generator):
    """n random digit sequences and their sorted (or reversed) targets, both (n, length) ints."""
    x = rng.integers(0, 10, size=(n, length))
    y = np.sort(x, axis=1) if task == "sort" else x[:, ::-1].copy()
    return x, y


class Encoder(nn.Module):
    """Embedding + sinusoidal positions -> one TransformerEncoderLayer -> a digit per position."""

    def __init__(self, length: int, d_model: int = 64, nhead: int = 4, rng: int = 0) -> None:
        super().__init__()
        r = np.random.default_rng(rng)
        self.embed = nn.Embedding(10, d_model, rng=r)
        self.pos = nn.PositionalEncoding(d_model, max_len=length, batch_first=True)
        self.layer = nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.0,
                                                batch_first=True, norm_first=True, rng=r)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10, rng=r)

    def forward(self, x):
        return self.head(self.norm(self.layer(self.pos(self.embed(x)))))   # (N, L, 10)


class MLPBaseline(nn.Module):
    """One-hot sequence (L*10) -> two hidden layers -> L*10 logits."""

    def __init__(self, length: int, hidden: int = 512, rng: int = 0) -> None:
        super().__init__()
        self.length = length
        self.net = nn.MLP(length * 10, hidden=(hidden, hidden), out_features=length * 10, rng=rng)

    def forward(self, x):
        onehot = np.eye(10, dtype=np.float32)[np.asarray(x)].reshape(len(x), -1)
        return self.net(nl.tensor(onehot)).reshape(len(x), self.length, 10)


def sequence_accuracy(model, x, y) -> tuple[float, float]:
    """(fraction of sequences entirely right, fraction of digits right)."""
    with nl.no_grad():
        pred = model.eval()(x).numpy().argmax(-1)
    return float((pred == y).all(axis=1).mean()), float((pred == y).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["sort", "reverse"], default="sort")
    p.add_argument("--model", choices=["transformer", "mlp"], default="transformer")
    p.add_argument("--length", type=int, default=8)
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x, y = make_task(args.task, args.n_train, args.length, rng)
    xt, yt = make_task(args.task, 2000, args.length, rng)
    model = Encoder(args.length) if args.model == "transformer" else MLPBaseline(args.length)
    opt = nl.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    steps = args.epochs * (-(-len(x) // args.batch_size))
    start, step = time.perf_counter(), 0
    for epoch in range(args.epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(x)), -(-len(x) // args.batch_size)):
            # linear warm-up then cosine decay: a transformer trained at full lr from the start is unstable
            warm = min(1.0, (step + 1) / 200)
            for group in opt.param_groups:
                group["lr"] = args.lr * warm * 0.5 * (1 + np.cos(np.pi * step / steps))
            logits = model(x[idx])
            loss = F.cross_entropy(logits.reshape(-1, 10), y[idx].reshape(-1))
            opt.zero_grad()
            loss.backward()
            nl.optim.clip_grad_norm(model.parameters(), 1.0)
            opt.step()
            step += 1
        seq, digit = sequence_accuracy(model, xt, yt)
        print(f"epoch {epoch + 1}/{args.epochs}  loss={loss.item():.4f}  test sequence accuracy={seq:.4f}  "
              f"digit accuracy={digit:.4f}", flush=True)
    seq, digit = sequence_accuracy(model, xt, yt)
    print(f"{args.model} on {args.task} (length {args.length}, {args.n_train} training sequences): test "
          f"sequence accuracy {seq:.4f}, digit accuracy {digit:.4f}, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
