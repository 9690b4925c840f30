"""Recommendation from implicit feedback: neural collaborative filtering and its baselines.

He et al. (2017) "Neural Collaborative Filtering": a user and an item each get two embeddings;
one pair is multiplied element-wise (GMF, a generalised matrix factorisation), the other is
concatenated and fed through an MLP; one linear layer reads both towers (NeuMF). Training sees
every observed (user, item) pair as a positive and ``negatives`` random unobserved items per
positive as negatives, with binary cross-entropy.

Evaluation is the paper's leave-one-out protocol: hold out one interaction per user, rank it
among 99 items the user never touched, and report HR@K (is it in the top K?) and NDCG@K
(1 / log2(rank + 1) when it is). The baselines a practitioner would try first are here too:
``Popularity`` (most-interacted items) and ``PureSVD`` (a truncated SVD of the user x item
matrix, i.e. plain matrix factorisation; Cremonesi et al. 2010). ``tuned_comparison`` picks
each family's settings on a validation item held out of the training data, never the test items.

Example:
    >>> from neuralab.apps.recommend import NCFRecommender, make_implicit_feedback, leave_one_out_report
    >>> data = make_implicit_feedback(n_users=100, n_items=150, random_state=0)
    >>> rec = NCFRecommender(epochs=5, random_state=0).fit(data.users, data.items)
    >>> rec.recommend(data.users[0], k=3)     # (item, score) pairs, best first
    [(..., ...), (..., ...), (..., ...)]
    >>> print(leave_one_out_report(data.users, data.items, random_state=0)["table"])
    2402 interactions, 100 users, 147 items; leave-one-out, held-out item ranked among 99 unseen
    model              HR@10  NDCG@10   HR@1   fit s
    popularity        0.6500   0.4182 0.2200 ...
    PureSVD (k=16)    0.5800   0.3769 0.2200 ...
    NCF (NeuMF)       ...
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
from sklearn.base import BaseEstimator

from .. import functional as F
from ..datasets import ImplicitFeedback, make_implicit_feedback  # the generator lives with the data sets
from ..nn import MLP, Embedding, Linear, Module
from ..tensor import Tensor, no_grad

__all__ = ["ImplicitFeedback", "make_implicit_feedback", "NCF", "NCFRecommender", "Popularity",
           "PureSVD", "leave_one_out_split", "evaluate_ranking", "leave_one_out_report",
           "tuned_comparison", "plot_hit_rate"]


# ============================================================================ data
def _index(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ids (sorted) and each value's position among them."""
    ids, idx = np.unique(np.asarray(values), return_inverse=True)
    return ids, idx.astype(np.int64)


def leave_one_out_split(users: np.ndarray, items: np.ndarray, random_state: Any = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out one random interaction per user with at least two (He et al.'s protocol).

    Returns (train_users, train_items, test_users, test_items), integer index arrays.
    Example: ``tr_u, tr_i, te_u, te_i = leave_one_out_split(u, i, random_state=0)``
    """
    users, items = np.asarray(users), np.asarray(items)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(users))
    # The first occurrence of each user in a random order is a random interaction of theirs.
    _, first = np.unique(users[order], return_index=True)
    held = order[first]
    counts = np.bincount(users)
    held = held[counts[users[held]] >= 2]
    mask = np.ones(len(users), bool)
    mask[held] = False
    return users[mask], items[mask], users[held], items[held]


def _seen_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    seen = np.zeros((n_users, n_items), bool)
    seen[users, items] = True
    return seen


# ============================================================================ baselines
class Popularity:
    """Recommend the items most users touched, the same list for everyone.

    Example: ``Popularity().fit(u, i, n_users, n_items).score(u, i)``
    """

    def fit(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> "Popularity":
        self.counts_ = np.bincount(items, minlength=n_items).astype(np.float64)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Higher is better; one score per (user, item) pair."""
        return self.counts_[items]


class PureSVD:
    """Plain matrix factorisation: the rank-``k`` truncated SVD of the 0/1 user x item matrix.

    A user's score for item i is ``r_u Q Q_i`` (Q: the top right singular vectors), the
    classical "PureSVD" top-N recommender.
    Example: ``PureSVD(16).fit(u, i, n_users, n_items).score(u, i)``
    """

    def __init__(self, n_factors: int = 16) -> None:
        self.n_factors = n_factors

    def fit(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> "PureSVD":
        from scipy.sparse import csr_matrix
        from scipy.sparse.linalg import svds
        R = csr_matrix((np.ones(len(users)), (users, items)), shape=(n_users, n_items))
        k = max(1, min(self.n_factors, min(R.shape) - 1))
        _, _, vt = svds(R, k=k, random_state=0)
        self.user_vectors_ = np.asarray(R @ vt.T)   # r_u Q
        self.item_vectors_ = vt.T                   # Q
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Higher is better; one score per (user, item) pair."""
        return np.einsum("nk,nk->n", self.user_vectors_[users], self.item_vectors_[items])


# ============================================================================ NCF
TOWERS = ("neumf", "gmf", "mlp")


class NCF(Module):
    """NeuMF: a GMF tower (u * v) and an MLP tower (MLP([u; v])), read by one linear layer.

    Args:
        n_users, n_items: embedding table sizes.
        factors: width of the GMF embeddings.
        mlp_layers: widths of the MLP tower; its input is two embeddings of mlp_layers[0] / 2.
        towers: "neumf" (both), or "gmf" / "mlp" alone (the paper pretrains each alone).
        rng: seed or Generator for the initial weights.

    ``forward(users, items)`` takes integer index arrays (N,) and returns logits (N,).
    Example: ``NCF(100, 50, rng=0)(np.array([0, 1]), np.array([3, 4])).shape  # (2,)``
    """

    def __init__(self, n_users: int, n_items: int, factors: int = 8,
                 mlp_layers: Sequence[int] = (32, 16, 8), towers: str = "neumf",
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if towers not in TOWERS:
            raise ValueError(f"NCF: towers must be one of {TOWERS}, got {towers!r}")
        rng = np.random.default_rng(rng)
        self.towers = towers
        self.use_gmf, self.use_mlp = towers in ("neumf", "gmf"), towers in ("neumf", "mlp")
        width = 0
        if self.use_gmf:
            self.user_gmf = Embedding(n_users, factors, rng=rng)
            self.item_gmf = Embedding(n_items, factors, rng=rng)
            width += factors
        if self.use_mlp:
            half = max(1, mlp_layers[0] // 2)
            self.user_mlp = Embedding(n_users, half, rng=rng)
            self.item_mlp = Embedding(n_items, half, rng=rng)
            self.mlp = MLP(2 * half, hidden=tuple(mlp_layers[1:-1]) if len(mlp_layers) > 2 else (),
                           out_features=mlp_layers[-1], activation="relu", rng=rng)
            width += mlp_layers[-1]
        for emb in self.embeddings():
            emb.weight.data *= np.float32(0.1)  # the paper's N(0, 0.01) start
        self.predict_layer = Linear(width, 1, rng=rng)

    def embeddings(self) -> list[Embedding]:
        """The embedding tables this model uses (GMF's, then the MLP's)."""
        names = (["user_gmf", "item_gmf"] if self.use_gmf else []) + \
                (["user_mlp", "item_mlp"] if self.use_mlp else [])
        return [getattr(self, n) for n in names]

    def logits_and_penalty(self, users: Any, items: Any) -> tuple[Tensor, Tensor]:
        """Logits (N,) and the sum of squares of the embedding rows they used (for L2)."""
        parts, rows = [], []
        if self.use_gmf:
            u, v = self.user_gmf(users), self.item_gmf(items)
            parts.append(u * v)
            rows += [u, v]
        if self.use_mlp:
            u, v = self.user_mlp(users), self.item_mlp(items)
            parts.append(F.relu(self.mlp(F.concatenate([u, v], axis=1))))
            rows += [u, v]
        joined = parts[0] if len(parts) == 1 else F.concatenate(parts, axis=1)
        penalty = sum(((r * r).sum() for r in rows[1:]), (rows[0] * rows[0]).sum())
        return self.predict_layer(joined).reshape(-1), penalty

    def forward(self, users: Any, items: Any) -> Tensor:
        return self.logits_and_penalty(users, items)[0]


def _neumf_from_pretrained(gmf: NCF, mlp: NCF, alpha: float, n_users: int, n_items: int,
                           factors: int, mlp_layers: Sequence[int]) -> NCF:
    """He et al.'s NeuMF start: both towers' weights, the output layer ``[alpha w_gmf, (1 - alpha) w_mlp]``."""
    model = NCF(n_users, n_items, factors, tuple(mlp_layers), "neumf", rng=0)
    state = {k: v for k, v in gmf.state_dict().items() if not k.startswith("predict_layer")}
    state.update({k: v for k, v in mlp.state_dict().items() if not k.startswith("predict_layer")})
    g, m = gmf.predict_layer, mlp.predict_layer
    state["predict_layer.weight"] = np.concatenate(
        [alpha * g.weight.data, (1 - alpha) * m.weight.data], axis=1).astype(np.float32)
    state["predict_layer.bias"] = (alpha * g.bias.data + (1 - alpha) * m.bias.data).astype(np.float32)
    model.load_state_dict(state)
    return model


class NCFRecommender(BaseEstimator):
    """Neural collaborative filtering on raw (user, item) ids, with the scikit-learn API.

    Args:
        factors, mlp_layers: NCF sizes (``factors`` is also the GMF embedding width).
        negatives: unobserved items sampled per observed pair, each epoch afresh.
        epochs, batch_size, lr: Adam training settings.
        l2: weight of the squared norm of the embedding rows in each batch (per example).
        model: "neumf" (both towers), "gmf" (a matrix factorisation trained the same way) or "mlp".
        pretrain: NeuMF only: train GMF and MLP alone first (``epochs`` each), start NeuMF from
            both with the output layer weighted ``alpha`` / ``1 - alpha``, then fine-tune it
            for ``epochs`` with plain SGD at ``finetune_lr`` (He et al. 2017, section 3.4.1).
        random_state: seed or Generator.

    Attributes after fit: ``user_ids_``, ``item_ids_`` (the raw ids, index = embedding row),
    ``model_`` (NCF), ``interactions_`` ((n, 2) indices seen in training), ``loss_curve_``.

    Example:
        >>> rec = NCFRecommender(epochs=10, random_state=0).fit(df["user"], df["item"])
        >>> rec.recommend("alice", k=2)            # raw item ids, best first, unseen only
        [('...', ...), ('...', ...)]
    """

    def __init__(self, factors: int = 8, mlp_layers: Sequence[int] = (32, 16, 8),
                 negatives: int = 4, epochs: int = 20, batch_size: int = 256, lr: float = 2e-3,
                 l2: float = 0.0, model: str = "neumf", pretrain: bool = False,
                 alpha: float = 0.5, finetune_lr: float = 0.05, random_state: Any = None) -> None:
        self.factors, self.mlp_layers, self.negatives = factors, mlp_layers, negatives
        self.epochs, self.batch_size, self.lr, self.l2 = epochs, batch_size, lr, l2
        self.model, self.pretrain, self.alpha, self.finetune_lr = model, pretrain, alpha, finetune_lr
        self.random_state = random_state

    def fit(self, users: Sequence[Any], items: Sequence[Any]) -> "NCFRecommender":
        """Learn from observed (users[j], items[j]) pairs; returns self."""
        users, items = np.asarray(users), np.asarray(items)
        if users.shape != items.shape or users.ndim != 1 or len(users) == 0:
            raise ValueError(f"NCFRecommender.fit: users and items must be equal-length 1-d "
                             f"sequences, got shapes {users.shape} and {items.shape}")
        user_ids, u = _index(users)
        item_ids, i = _index(items)
        self.fit_indices(u, i, len(user_ids), len(item_ids))
        self.user_ids_, self.item_ids_ = user_ids, item_ids
        return self

    def fit_indices(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
                    ) -> "NCFRecommender":
        """``fit`` on index arrays in [0, n_users) and [0, n_items) (used by the evaluation)."""
        from .. import optim
        if self.model not in TOWERS:
            raise ValueError(f"NCFRecommender: model must be one of {TOWERS}, got {self.model!r}")
        self.user_ids_, self.item_ids_ = np.arange(n_users), np.arange(n_items)
        rng = np.random.default_rng(self.random_state)
        pairs = np.unique(np.stack([users, items], axis=1), axis=0)  # repeats count once
        self.interactions_ = pairs
        seen = _seen_matrix(pairs[:, 0], pairs[:, 1], n_users, n_items)
        layers = tuple(self.mlp_layers)
        self.loss_curve_ = []
        if self.model == "neumf" and self.pretrain:
            towers = {}
            for name in ("gmf", "mlp"):
                towers[name] = NCF(n_users, n_items, self.factors, layers, name, rng=rng)
                opt = optim.Adam(towers[name].parameters(), lr=self.lr)
                self._train(towers[name], opt, pairs, seen, n_items, rng)
            self.model_ = _neumf_from_pretrained(towers["gmf"], towers["mlp"], self.alpha,
                                                 n_users, n_items, self.factors, layers)
            # Adam's moments are not pretrained, so the paper fine-tunes with plain SGD.
            opt = optim.SGD(self.model_.parameters(), lr=self.finetune_lr)
        else:
            self.model_ = NCF(n_users, n_items, self.factors, layers, self.model, rng=rng)
            opt = optim.Adam(self.model_.parameters(), lr=self.lr)
        self._train(self.model_, opt, pairs, seen, n_items, rng)
        return self

    def _train(self, model: NCF, opt: Any, pairs: np.ndarray, seen: np.ndarray, n_items: int,
               rng: np.random.Generator) -> None:
        """Train ``model`` with ``nl.fit``: each epoch, the positives and fresh negatives, shuffled."""
        from ..training import fit
        n_pos = len(pairs)
        labels = np.concatenate([np.ones(n_pos), np.zeros(n_pos * self.negatives)]).astype(np.float32)

        def batches() -> Iterator[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
            u = np.concatenate([pairs[:, 0], np.repeat(pairs[:, 0], self.negatives)])
            neg = rng.integers(0, n_items, n_pos * self.negatives)
            clash = seen[u[n_pos:], neg]
            for _ in range(10):  # resample negatives that hit a positive (rare when sparse)
                if not clash.any():
                    break
                neg[clash] = rng.integers(0, n_items, int(clash.sum()))
                clash = seen[u[n_pos:], neg]
            i = np.concatenate([pairs[:, 1], neg])
            order = rng.permutation(len(u))
            for start in range(0, len(order), self.batch_size):
                b = order[start:start + self.batch_size]
                yield (u[b], i[b]), labels[b]

        def train_step(ui: tuple[np.ndarray, np.ndarray], yb: np.ndarray, _: Any) -> tuple[float, None]:
            logits, penalty = model.logits_and_penalty(*ui)
            loss = F.binary_cross_entropy_with_logits(logits, yb)
            value = loss.item()  # the curve shows the data loss, without the L2 term
            if self.l2:
                loss = loss + penalty * (self.l2 / len(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return value, None

        # Small matrices: extra BLAS threads only add synchronisation (slower on a busy machine).
        hist = fit(model, batches, loss="bce", optimizer=opt, epochs=self.epochs,
                   batch_size=self.batch_size, seed=rng, verbose=0, blas_threads=1,
                   train_step=train_step)
        self.loss_curve_ += [float(v) for v in hist.history["loss"]]

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logits for (user index, item index) pairs; higher means more likely to interact."""
        with no_grad():
            return self.model_(np.asarray(users, np.int64), np.asarray(items, np.int64)).numpy()

    def recommend(self, user: Any, k: int = 10, exclude_seen: bool = True) -> list[tuple[Any, float]]:
        """The ``k`` best items for raw user id ``user``, as (item id, score), best first.

        Example: ``rec.recommend(42, k=3)  # [(17, 3.2), (5, 2.9), (88, 2.7)]``
        """
        if not hasattr(self, "model_"):
            raise ValueError("this NCFRecommender is not fitted yet; call fit(users, items) first")
        where = np.flatnonzero(self.user_ids_.astype(str) == str(user))
        if len(where) == 0:
            raise ValueError(f"unknown user {user!r}: not in the training data "
                             f"({len(self.user_ids_)} users, e.g. {self.user_ids_[:3].tolist()})")
        u = int(where[0])
        n_items = len(self.item_ids_)
        scores = self.score(np.full(n_items, u), np.arange(n_items))
        if exclude_seen:
            scores[self.interactions_[self.interactions_[:, 0] == u, 1]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        ids = self.item_ids_[top].tolist()  # plain Python ints or strings
        return [(i, float(scores[j])) for i, j in zip(ids, top) if np.isfinite(scores[j])]


# ============================================================================ evaluation
def evaluate_ranking(model: Any, train_users: np.ndarray, train_items: np.ndarray,
                     test_users: np.ndarray, test_items: np.ndarray, n_items: int,
                     n_negatives: int = 99, k_max: int = 10, random_state: Any = None) -> dict:
    """HR@K and NDCG@K for K = 1..k_max: each held-out item ranked among ``n_negatives`` unseen ones.

    ``model.score(users, items)`` gives the scores; ties count against the held-out item.
    Returns ``{"hr": array (k_max,), "ndcg": array (k_max,), "ranks": array}``.
    Example: ``evaluate_ranking(pop, tr_u, tr_i, te_u, te_i, n_items)["hr"][9]  # HR@10``
    """
    rng = np.random.default_rng(random_state)
    n_users = int(max(train_users.max(), test_users.max())) + 1
    seen = _seen_matrix(np.concatenate([train_users, test_users]),
                        np.concatenate([train_items, test_items]), n_users, n_items)
    ranks = np.empty(len(test_users), np.int64)
    for j, (u, pos) in enumerate(zip(test_users, test_items)):
        pool = np.flatnonzero(~seen[u])
        negs = rng.choice(pool, size=min(n_negatives, len(pool)), replace=False)
        cand = np.concatenate([[pos], negs])
        s = model.score(np.full(len(cand), u), cand)
        ranks[j] = int((s[1:] >= s[0]).sum())  # 0 = the held-out item is first
    ks = np.arange(1, k_max + 1)
    hit = ranks[:, None] < ks[None, :]
    hr = hit.mean(axis=0)
    ndcg = (hit / np.log2(ranks[:, None] + 2)).mean(axis=0)
    return {"hr": hr, "ndcg": ndcg, "ranks": ranks}


def leave_one_out_report(users: Sequence[Any], items: Sequence[Any], models: dict | None = None,
                         k_max: int = 10, random_state: Any = 0) -> dict:
    """Fit each model on a leave-one-out split and rank the held-out items (HR@K, NDCG@K).

    ``models`` maps a name to an unfitted model with ``fit(users, items, n_users, n_items)``
    (or an NCFRecommender); default: popularity, PureSVD and NCF. Returns
    ``{"results": {name: evaluate_ranking(...) + "seconds"}, "table": str}``.
    Example: ``print(leave_one_out_report(df.user, df.item)["table"])``
    """
    import time
    _, u = _index(users)
    _, i = _index(items)
    n_users, n_items = int(u.max()) + 1, int(i.max()) + 1
    tr_u, tr_i, te_u, te_i = leave_one_out_split(u, i, random_state)
    if models is None:
        models = {"popularity": Popularity(), "PureSVD (k=16)": PureSVD(16),
                  "NCF (NeuMF)": NCFRecommender(random_state=random_state)}
    results = {}
    for name, model in models.items():
        start = time.perf_counter()
        if isinstance(model, NCFRecommender):
            model.fit_indices(tr_u, tr_i, n_users, n_items)
        else:
            model.fit(tr_u, tr_i, n_users, n_items)
        seconds = time.perf_counter() - start
        res = evaluate_ranking(model, tr_u, tr_i, te_u, te_i, n_items, k_max=k_max,
                               random_state=random_state)
        res["seconds"] = seconds
        results[name] = res
    width = max(len(n) for n in results) + 2
    lines = [f"{len(u)} interactions, {n_users} users, {n_items} items; leave-one-out, "
             f"held-out item ranked among 99 unseen",
             f"{'model':<{width}}{'HR@10':>8}{'NDCG@10':>9}{'HR@1':>7}{'fit s':>8}"]
    for name, r in results.items():
        lines.append(f"{name:<{width}}{r['hr'][k_max - 1]:>8.4f}{r['ndcg'][k_max - 1]:>9.4f}"
                     f"{r['hr'][0]:>7.4f}{r['seconds']:>8.1f}")
    return {"results": results, "table": "\n".join(lines)}


def _fit(model: Any, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> Any:
    if isinstance(model, NCFRecommender):
        return model.fit_indices(users, items, n_users, n_items)
    return model.fit(users, items, n_users, n_items)


def tuned_comparison(users: Sequence[Any], items: Sequence[Any], candidates: dict,
                     k_max: int = 10, random_state: Any = 0, verbose: bool = False) -> dict:
    """Choose each model family's settings on a validation split, then rank the test items once.

    The test split is ``leave_one_out_split(..., random_state)``; the validation split holds
    out one more interaction per user from the *training* part (``random_state + 1``), so the
    test items never influence a choice. ``candidates`` maps a family name to
    ``{setting label: unfitted model}``; the setting with the best validation NDCG@10 is
    refitted on the whole training part and evaluated on the test items.
    Returns ``{"families": {name: {"chosen", "validation": {label: (HR, NDCG)}, "test"}},
    "table": str}``.
    Example: ``tuned_comparison(u, i, {"PureSVD": {f"k={k}": PureSVD(k) for k in (4, 8, 16)}})``
    """
    import copy
    import time
    _, u = _index(users)
    _, i = _index(items)
    n_users, n_items = int(u.max()) + 1, int(i.max()) + 1
    tr_u, tr_i, te_u, te_i = leave_one_out_split(u, i, random_state)
    fit_u, fit_i, va_u, va_i = leave_one_out_split(tr_u, tr_i, int(random_state or 0) + 1)
    families = {}
    for family, settings in candidates.items():
        scores, fresh = {}, {}
        for label, model in settings.items():
            fresh[label] = copy.deepcopy(model)   # an unfitted copy for the final refit
            start = time.perf_counter()
            _fit(model, fit_u, fit_i, n_users, n_items)
            res = evaluate_ranking(model, fit_u, fit_i, va_u, va_i, n_items, k_max=k_max,
                                   random_state=random_state)
            scores[label] = (float(res["hr"][k_max - 1]), float(res["ndcg"][k_max - 1]))
            if verbose:
                print(f"  {family:<10} {label:<40} validation HR@{k_max} {scores[label][0]:.4f} "
                      f"NDCG@{k_max} {scores[label][1]:.4f}  ({time.perf_counter() - start:.1f} s)",
                      flush=True)
        chosen = max(scores, key=lambda k: scores[k][1])
        model = _fit(fresh[chosen], tr_u, tr_i, n_users, n_items)
        test = evaluate_ranking(model, tr_u, tr_i, te_u, te_i, n_items, k_max=k_max,
                                random_state=random_state)
        families[family] = {"chosen": chosen, "validation": scores, "test": test, "model": model}
    width = max(len(f"{f} ({r['chosen']})") for f, r in families.items()) + 2
    lines = [f"{len(u)} interactions, {n_users} users, {n_items} items; settings chosen on a "
             f"validation item per user held out of the training part",
             f"{'model (chosen setting)':<{width}}{'val NDCG':>9}{'HR@10':>8}{'NDCG@10':>9}{'HR@1':>7}"]
    for f, r in families.items():
        t = r["test"]
        lines.append(f"{f + ' (' + r['chosen'] + ')':<{width}}{r['validation'][r['chosen']][1]:>9.4f}"
                     f"{t['hr'][k_max - 1]:>8.4f}{t['ndcg'][k_max - 1]:>9.4f}{t['hr'][0]:>7.4f}")
    return {"families": families, "table": "\n".join(lines)}


def plot_hit_rate(results: dict, path: str) -> None:
    """HR@K for K = 1..10, one line per model (from ``leave_one_out_report``'s results), as a PNG.

    Example: ``plot_hit_rate(leave_one_out_report(u, i)["results"], "hr.png")``
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        ks = np.arange(1, len(r["hr"]) + 1)
        ax.plot(ks, r["hr"], marker="o", label=f"{name} (NDCG@10 {r['ndcg'][-1]:.3f})")
    ax.set_xlabel("K (held-out item among the top K of 100 candidates)")
    ax.set_ylabel("hit rate HR@K")
    ax.set_xticks(np.arange(1, 11))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("leave-one-out ranking")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
