"""Lab ``search``: grid search against random search with the same budget.

Bergstra and Bengio (2012) observed that of the many hyperparameters of a network only a
few matter for a given problem. A grid spends its budget on every combination, so with 4
hyperparameters and 16 trials it tries only 2 values of each, also of the two that matter;
16 random trials try 16 different values of every hyperparameter.

The objective here is a cheap synthetic stand-in for a validation accuracy (so the lab can
repeat the comparison over hundreds of seeds in a second): four hyperparameters scaled to
[0, 1] (log learning rate, dropout, log batch size, momentum), of which only the first two
matter: accuracy is a bump around an optimum drawn at random for every seed, narrow in the
learning rate and wider in dropout; batch size and momentum move it by at most 0.005.

Example: ``nl.labs.run("search", quick=True).claims``
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from . import Claim, LabResult

NAMES = ["log10 learning rate", "dropout", "log2 batch size", "momentum"]
WIDTHS = (0.08, 0.2)          # the bump's width in the two hyperparameters that matter


def objective(u: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Synthetic validation accuracy of configurations ``u`` (n, 4) in [0, 1]^4.

    Example: ``objective(np.full((1, 4), 0.5), np.array([0.5, 0.5]))  # array([0.95...])``
    """
    u = np.atleast_2d(u)
    bump = np.exp(-0.5 * (((u[:, 0] - centre[0]) / WIDTHS[0]) ** 2
                          + ((u[:, 1] - centre[1]) / WIDTHS[1]) ** 2))
    minor = 0.0025 * (np.cos(3 * u[:, 2]) + np.cos(3 * u[:, 3]))  # the two that barely matter
    return 0.1 + 0.85 * bump + minor


def grid(k: int) -> np.ndarray:
    """The k**4 grid: k evenly spaced values per hyperparameter (the centres of k equal cells).

    Example: ``grid(3).shape  # (81, 4)``
    """
    values = (np.arange(k) + 0.5) / k
    return np.array(list(itertools.product(values, repeat=4)))


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Compare grid and random search at equal budgets over many seeds.

    Example: ``run(quick=True).passed``
    """
    n_seeds = 300 if quick else 2000
    ks = (2, 3, 4)                     # budgets 16, 81, 256
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.1, 0.9, size=(n_seeds, 2))

    rows, wins, regrets = [], {}, {}
    for k in ks:
        budget = k ** 4
        G = grid(k)
        best_grid = np.array([objective(G, c).max() for c in centres])
        best_rand = np.array([objective(rng.uniform(size=(budget, 4)), c).max() for c in centres])
        optimum = np.array([objective(np.r_[c, 0, 0][None], c)[0] for c in centres])
        wins[budget] = (float(np.mean(best_rand > best_grid)), float(np.mean(best_grid > best_rand)))
        regrets[budget] = (float(np.mean(optimum - best_grid)), float(np.mean(optimum - best_rand)))
        rows.append([budget, k, budget, wins[budget][0], wins[budget][1],
                     float(best_grid.mean()), float(best_rand.mean()),
                     regrets[budget][0], regrets[budget][1]])

    b16 = ks[0] ** 4
    claims = [
        Claim(f"With the same budget of {b16} trials, random search finds the better configuration "
              f"more often than grid search: in at least 60% of {n_seeds} seeds.",
              wins[b16][0] >= 0.6 and wins[b16][0] > wins[b16][1],
              {"random_wins": wins[b16][0], "grid_wins": wins[b16][1], "seeds": n_seeds}),
        Claim("At every budget (16, 81, 256 trials) random search's best is closer to the optimum on "
              "average than grid search's.",
              all(regrets[b][1] < regrets[b][0] for b in regrets),
              {**{f"mean_gap_grid_{b}": v[0] for b, v in regrets.items()},
               **{f"mean_gap_random_{b}": v[1] for b, v in regrets.items()}}),
    ]

    figures = []
    if out_dir is not None:
        from .. import plots
        c0 = centres[0]
        G = grid(ks[0])
        R = np.random.default_rng(seed + 1).uniform(size=(b16, 4))

        def background(a, b):
            U = np.column_stack([a.ravel(), b.ravel(), np.zeros(a.size), np.zeros(a.size)])
            return objective(U, c0).reshape(a.shape)

        def marked(points):  # each trial, and the best one found
            best = points[np.argmax(objective(points, c0))]
            return points[:, 0], points[:, 1], best

        gx, gy, gbest = marked(G)
        rx, ry, rbest = marked(R)
        figures.append(plots.scatter_panels(
            [{"title": f"Grid: {b16} trials, only {ks[0] ** 2} distinct points here",
              "xlabel": NAMES[0] + " (scaled)", "ylabel": NAMES[1] + " (scaled)",
              "background": background, "xlim": (0, 1), "ylim": (0, 1), "s": 45,
              "background_label": "validation accuracy",
              "points": {"grid trial": (gx, gy), "best found": ([gbest[0]], [gbest[1]])}},
             {"title": f"Random: {b16} trials, {b16} distinct points",
              "xlabel": NAMES[0] + " (scaled)", "ylabel": NAMES[1] + " (scaled)",
              "background": background, "xlim": (0, 1), "ylim": (0, 1), "s": 45,
              "background_label": "validation accuracy",
              "points": {"random trial": (rx, ry), "best found": ([rbest[0]], [rbest[1]])}}],
            out_dir / "search_trials.png",
            title="The two hyperparameters that matter (the other two are projected away)"))
        budgets = [k ** 4 for k in ks]
        figures.append(plots.bar_panels(
            [{"title": f"Who finds the better configuration ({n_seeds} seeds)", "xlabel": "budget (trials)",
              "ylabel": "share of seeds", "groups": [str(b) for b in budgets], "rotation": 0,
              "ylim": (0, 1), "bars": {"random wins": [wins[b][0] for b in budgets],
                                       "grid wins": [wins[b][1] for b in budgets]}},
             {"title": "Mean distance of the best trial to the optimum", "xlabel": "budget (trials)",
              "ylabel": "optimum - best accuracy found", "groups": [str(b) for b in budgets],
              "rotation": 0, "logy": True,
              "bars": {"grid": [regrets[b][0] for b in budgets],
                       "random": [regrets[b][1] for b in budgets]}}],
            out_dir / "search_wins.png", title="Grid against random search, same budget (Bergstra & Bengio 2012)"))
    return LabResult("search", "", columns=[
        "budget", "grid values per hyperparameter", "random values per hyperparameter",
        "random wins (share)", "grid wins (share)", "grid mean best", "random mean best",
        "grid mean gap to optimum", "random mean gap to optimum"], rows=rows, claims=claims,
        figures=figures, notes=[f"synthetic objective: 4 hyperparameters in [0, 1], 2 matter "
                                f"(bump widths {WIDTHS}), optimum drawn per seed; {n_seeds} seeds"])
