"""MNIST-1D (Greydanus 2020) with a small 1-D CNN and a GRU, trained with nl.fit.

The paper reports test accuracy of about 94% for a CNN, 91% for a GRU and 68% for an MLP.
The data comes from ``nl.datasets.load_mnist1d`` (mnist1d's generator, offline, seeded).
Both models overfit 4000 signals quickly, so training uses random shifts of the signal
(the generator itself places digits at random offsets), AdamW's weight decay and a cosine
learning-rate schedule.

    OPENBLAS_NUM_THREADS=1 python examples/mnist1d_cnn_gru.py --model cnn --epochs 60
    OPENBLAS_NUM_THREADS=1 python examples/mnist1d_cnn_gru.py --model gru --epochs 60

(On a loaded 2-core machine one BLAS thread is much faster for these small matrices.)
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import neuralab as nl
from neuralab import nn


class CNN(nn.Module):
    """Three 1-D convolutions with ReLU (the paper's layout, wider), dropout, then a linear head."""

    def __init__(self, channels: int = 64, dropout: float = 0.2, rng: int = 0) -> None:
        super().__init__()
        r = np.random.default_rng(rng)
        self.body = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1, rng=r), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1, rng=r), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1, rng=r), nn.ReLU(),
            nn.Flatten(), nn.Dropout(dropout, rng=r), nn.Linear(channels * 5, 10, rng=r))

    def forward(self, x):
        return self.body(x.reshape(x.shape[0], 1, x.shape[1]))


class GRUNet(nn.Module):
    """A GRU reads the signal one value per step; its last state is classified."""

    def __init__(self, hidden: int = 128, rng: int = 0) -> None:
        super().__init__()
        r = np.random.default_rng(rng)
        self.gru = nn.GRU(1, hidden, batch_first=True, rng=r)
        self.head = nn.Linear(hidden, 10, rng=r)

    def forward(self, x):
        _, h = self.gru(x.reshape(x.shape[0], x.shape[1], 1))
        return self.head(h[-1])


def shifted_batches(x: np.ndarray, y: np.ndarray, batch_size: int, max_shift: int, rng: np.random.Generator):
    """A function giving one epoch of shuffled batches, each signal shifted by up to max_shift steps."""
    def epoch():
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb = x[idx]
            if max_shift:
                shifts = rng.integers(-max_shift, max_shift + 1, size=len(idx))
                # edge padding keeps the signal's ends plausible after the shift
                padded = np.pad(xb, ((0, 0), (max_shift, max_shift)), mode="edge")
                cols = np.arange(x.shape[1])[None, :] + (max_shift - shifts)[:, None]
                xb = np.take_along_axis(padded, cols, axis=1)
            yield xb, y[idx]
    return epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["cnn", "gru"], default="cnn")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--width", type=int, default=None, help="CNN channels / GRU hidden size")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--shift", type=int, default=3, help="random shift augmentation (0: none)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    d = nl.datasets.load_mnist1d()
    x, y = d.X_train.astype(np.float32), d.y_train.astype(np.int64)
    xt, yt = d.X_test.astype(np.float32), d.y_test.astype(np.int64)
    if args.model == "cnn":
        model = CNN(args.width or 64, args.dropout, rng=args.seed)
    else:
        model = GRUNet(args.width or 128, rng=args.seed)
    lr = args.lr or (3e-3 if args.model == "cnn" else 3e-3)
    opt = nl.optim.AdamW(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    sched = nl.callbacks.LearningRateScheduler(nl.optim.CosineAnnealingLR(opt, T_max=args.epochs))
    rng = np.random.default_rng(args.seed)
    batches = shifted_batches(x, y, args.batch_size, args.shift, rng)
    start = time.perf_counter()
    hist = nl.fit(model, batches, optimizer=opt, epochs=args.epochs, validation_data=(xt, yt),
                  metrics=["accuracy"], callbacks=[sched], seed=args.seed, verbose=2)
    secs = time.perf_counter() - start
    with nl.no_grad():
        acc = float((model.eval()(nl.tensor(xt)).numpy().argmax(1) == yt).mean())
    print(f"{args.model}: test accuracy {acc:.4f} after {args.epochs} epochs, {secs:.1f} s "
          f"(best epoch {max(hist.history['val_accuracy']):.4f})")


if __name__ == "__main__":
    main()
