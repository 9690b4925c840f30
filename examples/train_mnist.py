"""Train a 784-256-256-10 ReLU network on MNIST with Adam: about 98% test accuracy.

Reads mnist.npz from $NEURALAB_DATA, ./data or ~/.neuralab/data;
nothing is downloaded):

    python examples/train_mnist.py            # 8 epochs: 98.2% in 43 s on 2 busy cores
    python examples/train_mnist.py --epochs 3 --wide   # 784-1024-1024-10 with dropout

Each epoch is 469 mini-batches of 128 images; each batch is one forward pass, one loss,
one backward pass and one Adam step (see ``neuralab/training.py``).
"""
from __future__ import annotations

import argparse
import time

import neuralab as nl
from neuralab import nn, optim
from neuralab.callbacks import LearningRateScheduler, ProgressBar


def load_mnist():
    """MNIST as float32 rows of 784 pixels in [0, 1] (cast once), with integer labels."""
    d = nl.datasets.load_mnist()  # $NEURALAB_DATA, ./data or ~/.neuralab/data; never downloads
    return d.X_train, d.y_train, d.X_test, d.y_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--wide", action="store_true", help="784-1024-1024-10 with dropout 0.3")
    args = parser.parse_args()

    X_train, y_train, X_test, y_test = load_mnist()
    hidden, dropout = ((1024, 1024), 0.3) if args.wide else ((256, 256), 0.0)
    model = nn.MLP(784, hidden=hidden, out_features=10, activation="relu", dropout=dropout, rng=0)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    # Cosine decay lets the last epochs settle into a minimum instead of bouncing around it.
    schedule = LearningRateScheduler(optim.CosineAnnealingLR(opt, T_max=args.epochs))

    start = time.perf_counter()
    hist = nl.fit(model, X_train, y_train, loss="cross_entropy", optimizer=opt,
                  epochs=args.epochs, batch_size=128, metrics=["accuracy"], seed=0, verbose=2,
                  callbacks=[schedule, ProgressBar()])
    seconds = time.perf_counter() - start
    test = nl.evaluate(model, X_test, y_test, metrics=["accuracy"])
    print(f"{model.num_parameters():,} parameters, {len(hist.history['loss'])} epochs in "
          f"{seconds:.1f} s: test accuracy {test['accuracy']:.4f}, test loss {test['loss']:.4f}")


if __name__ == "__main__":
    main()
