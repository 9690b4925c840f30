"""A one-layer transformer encoder on digit-sequence tasks, against an MLP baseline.

Each input is a sequence of L digits. Targets, one per position:
  ``--task histogram``: how many times the digit at position i occurs in the sequence
  (Weiss et al. 2021, "Thinking like transformers"); every position must compare its digit
  with every other one, which one attention layer does directly;
  ``--task sort``: the i-th smallest digit; ``--task reverse``: the digit at position L-1-i.
An MLP given the same one-hot sequence and the same training set (``--model mlp``) is the
baseline. Sort and reverse are easy for it too (the sorted sequence is a threshold of the digit
counts, which are linear in the one-hot input; reversal is a fixed permutation); the
histogram needs a product of each position's digit with the counts, which it must learn
from examples. Sequence accuracy counts a sequence right only if every position is right.

    OPENBLAS_NUM_THREADS=1 python examples/transformer_sequences.py --task histogram
    OPENBLAS_NUM_THREADS=1 python examples/transformer_sequences.py --task histogram --model mlp
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import neuralab as nl
from neuralab import functional as F
from neuralab import nn


def make_task(task: str, n: int, length: int, rng: np.random.Generator):
    """n random digit sequences and their targets, both (n, length) ints."""
    x = rng.integers(0, 10, size=(n, length))
    if task == "histogram":
        y = (x[:, :, None] == x[:, None, :]).sum(axis=2)  # occurrences of x[i] in x: 1..length
    else:
        y = np.sort(x, axis=1) if task == "sort" else x[:, ::-1].copy()
    return x, y


def n_classes(task: str, length: int) -> int:
    """Output classes per position: a digit, or a count 0..length."""
    return length + 1 if task == "histogram" else 10


def encoder(length: int, n_out: int = 10, d_model: int = 64, nhead: int = 4, rng: int = 0) -> nn.Module:
    """Embedding + sinusoidal positions -> one TransformerEncoderLayer -> n_out logits per position.

    A plain nn.Sequential of single-input layers, so ``nl.export_onnx`` can write it.
    """
    r = np.random.default_rng(rng)
    return nn.Sequential(
        nn.Embedding(10, d_model, rng=r),
        nn.PositionalEncoding(d_model, max_len=length, batch_first=True),
        nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.0, batch_first=True,
                                   norm_first=True, rng=r),
        nn.LayerNorm(d_model),
        nn.Linear(d_model, n_out, rng=r))                 # (N, L, n_out)


class MLPBaseline(nn.Module):
    """One-hot sequence (L*10) -> two hidden layers -> L*n_out logits."""

    def __init__(self, length: int, n_out: int = 10, hidden: int = 512, rng: int = 0) -> None:
        super().__init__()
        self.length, self.n_out = length, n_out
        self.net = nn.MLP(length * 10, hidden=(hidden, hidden), out_features=length * n_out, rng=rng)

    def forward(self, x):
        onehot = np.eye(10, dtype=np.float32)[np.asarray(x)].reshape(len(x), -1)
        return self.net(nl.tensor(onehot)).reshape(len(x), self.length, self.n_out)


def sequence_accuracy(model, x, y) -> tuple[float, float]:
    """(fraction of sequences entirely right, fraction of digits right)."""
    with nl.no_grad():
        pred = model.eval()(x).numpy().argmax(-1)
    return float((pred == y).all(axis=1).mean()), float((pred == y).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["histogram", "sort", "reverse"], default="histogram")
    p.add_argument("--model", choices=["transformer", "mlp"], default="transformer")
    p.add_argument("--length", type=int, default=12)
    p.add_argument("--hidden", type=int, default=512, help="MLP baseline: width of its two hidden layers")
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0, help="data, initial weights and batch order")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    x, y = make_task(args.task, args.n_train, args.length, rng)
    xt, yt = make_task(args.task, 2000, args.length, rng)
    k = n_classes(args.task, args.length)
    model = (encoder(args.length, k, rng=args.seed) if args.model == "transformer"
             else MLPBaseline(args.length, k, hidden=args.hidden, rng=args.seed))
    print(f"{args.model}: {sum(p.data.size for p in model.parameters())} parameters", flush=True)
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
            loss = F.cross_entropy(logits.reshape(-1, k), y[idx].reshape(-1))
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
