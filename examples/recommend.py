"""Recommendation: neural collaborative filtering (NeuMF) vs popularity and plain matrix factorisation.

Data: ``nl.datasets.make_implicit_feedback`` (users and items with known latent factors plus
a long-tailed item popularity; see its docstring). Protocol of He et al. (2017): hold out one
interaction per user, rank it among 99 items the user never touched, report HR@10/NDCG@10.

Run:  python examples/recommend.py
Writes docs/apps/recommend_hr.png (HR@K for K = 1..10). The same comparison runs on your own
``user,item`` CSV with ``neuralab recommend evaluate clicks.csv --user U --item I``.
"""
from __future__ import annotations

import os
from pathlib import Path

import neuralab as nl
from neuralab.recommend import (NCFRecommender, Popularity, PureSVD, leave_one_out_report,
                                plot_hit_rate)

OUT = Path(__file__).resolve().parents[1] / "docs" / "apps"


def main() -> dict:
    data = nl.datasets.make_implicit_feedback(n_users=500, n_items=300, n_factors=8,
                                              random_state=0)
    models = {"popularity": Popularity(), "PureSVD (k=8)": PureSVD(8),
              "PureSVD (k=16)": PureSVD(16),
              "NCF (NeuMF, 8 + MLP 32-16-8)": NCFRecommender(epochs=20, random_state=0)}
    report = leave_one_out_report(data.users, data.items, models=models, random_state=0)
    print(report["table"])
    rec = models["NCF (NeuMF, 8 + MLP 32-16-8)"]
    print(f"\nNCF's top 5 for user 0: {[i for i, _ in rec.recommend(0, k=5)]}")
    os.environ.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")
    OUT.mkdir(parents=True, exist_ok=True)
    plot_hit_rate(report["results"], OUT / "recommend_hr.png")
    print(f"saved {OUT / 'recommend_hr.png'}")
    return report


if __name__ == "__main__":
    main()
