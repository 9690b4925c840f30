"""Recommendation: neural collaborative filtering (NeuMF) vs popularity and plain matrix factorisation.

Data: ``nl.datasets.make_implicit_feedback`` (users and items with known latent factors plus
a long-tailed item popularity; see its docstring). Protocol of He et al. (2017): hold out one
interaction per user, rank it among 99 items the user never touched, report HR@10/NDCG@10.

Every model family gets its settings chosen on a validation split (one more interaction per
user held out of the *training* part); only the chosen setting is refitted on the whole
training part and scored on the test items, once. NCF follows the paper: GMF and MLP towers
pretrained alone, NeuMF started from both with the output layer weighted alpha = 0.5 and
fine-tuned with SGD, 4 negatives per positive, Adam for pretraining. "GMF" is plain matrix
factorisation trained exactly like NCF (the GMF tower alone; Rendle et al. 2020's comparison).

Run:  python examples/recommend.py        (about 5 minutes on a busy 2-core machine)
Writes docs/apps/recommend_hr.png (HR@K for K = 1..10). The same comparison runs on your own
``user,item`` CSV with ``neuralab recommend evaluate clicks.csv --user U --item I``.
"""
from __future__ import annotations

import os
from pathlib import Path

import neuralab as nl
from neuralab.apps.recommend import NCFRecommender, Popularity, PureSVD, plot_hit_rate, tuned_comparison

OUT = Path(__file__).resolve().parents[1] / "docs" / "apps"


def candidates(seed: int = 0) -> dict:
    """Each family's settings to choose from (on validation data only)."""
    gmf = {f"{f} factors, l2={l2:g}": NCFRecommender(model="gmf", factors=f, l2=l2, epochs=20,
                                                     random_state=seed)
           for f in (8, 16) for l2 in (0.0, 1e-3, 3e-3)}
    neumf = {f"no pretraining, l2={l2:g}": NCFRecommender(epochs=20, l2=l2, random_state=seed)
             for l2 in (0.0, 1e-3)}
    for f, layers in ((8, (32, 16, 8)), (16, (64, 32, 16))):
        for lr in (0.003, 0.01):
            neumf[f"pretrained, {f} + MLP {'-'.join(map(str, layers))}, SGD {lr:g}"] = NCFRecommender(
                factors=f, mlp_layers=layers, epochs=20, pretrain=True, alpha=0.5,
                finetune_lr=lr, random_state=seed)
    return {"popularity": {"counts": Popularity()},
            "PureSVD": {f"k={k}": PureSVD(k) for k in (2, 4, 6, 8, 10, 12, 16, 24, 32)},
            "GMF": gmf,
            "NCF (NeuMF)": neumf}


def main(seed: int = 0) -> dict:
    data = nl.datasets.make_implicit_feedback(n_users=500, n_items=300, n_factors=8,
                                              random_state=0)
    report = tuned_comparison(data.users, data.items, candidates(seed), random_state=0,
                              verbose=True)
    print(report["table"])
    rec = report["families"]["NCF (NeuMF)"]["model"]
    print(f"\nNCF's top 5 for user 0: {[i for i, _ in rec.recommend(0, k=5)]}")
    os.environ.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")
    OUT.mkdir(parents=True, exist_ok=True)
    curves = {f"{name} ({r['chosen'].split(',')[0]})": r["test"]
              for name, r in report["families"].items()}
    plot_hit_rate(curves, OUT / "recommend_hr.png")
    print(f"saved {OUT / 'recommend_hr.png'}")
    return report


if __name__ == "__main__":
    main()
