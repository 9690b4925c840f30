"""The ``neuralab lab`` command: list the labs, run one or all, write their reports.

Example (shell): ``neuralab lab vanishing-gradients --quick --out out/vg``
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ._errors import guard, require

LAB_EXAMPLE = """Examples:

\b
  neuralab lab list
  neuralab lab perceptron --quick
  neuralab lab vanishing-gradients --out results/vg
  neuralab lab all --quick --out results
"""


@click.command("lab", epilog=LAB_EXAMPLE)
@click.argument("name")
@click.option("--quick", is_flag=True, help="The small version (seconds); same claims.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where to write figures, result.json and report.md "
                   "(default: lab_results/NAME; with 'all', one folder per lab inside).")
@click.option("--seed", default=0, show_default=True, help="Seed of every random choice.")
def lab_command(name: str, quick: bool, out_dir: str | None, seed: int) -> None:
    """Run a lab: NAME is one of `neuralab lab list`, or 'all'.

    Prints the lab's table and a verdict per claim, and writes the PNG figures, result.json
    and report.md. Exits with status 1 if any claim failed.
    """
    with guard():
        _run_labs(name, quick, out_dir, seed)


def _run_labs(name: str, quick: bool, out_dir: str | None, seed: int) -> None:
    from .. import labs
    if name == "list":
        for lab in labs.list():
            click.echo(f"{lab:22s} {labs.question(lab)}")
        return
    names = labs.list() if name == "all" else [name]
    if name != "all" and name.replace("_", "-").lower() not in labs.LABS:
        raise click.BadParameter(f"unknown lab {name!r}; choose one of: list, all, "
                                 + ", ".join(labs.list()), param_hint="NAME")
    require("matplotlib")  # every lab draws its figures
    root = Path(out_dir) if out_dir else Path("lab_results")
    failed = []
    for lab in names:
        target = root / lab if (name == "all" or not out_dir) else root
        t0 = time.perf_counter()
        result = labs.run(lab, quick=quick, out_dir=target, seed=seed)
        click.echo(str(result))
        click.echo(f"({time.perf_counter() - t0:.1f} s; report: {target / 'report.md'})\n")
        failed += [f"{lab}: {c.sentence}" for c in result.claims if not c.held]
    if failed:
        click.echo(f"{len(failed)} claim(s) did not hold:\n  " + "\n  ".join(failed), err=True)
        sys.exit(1)
