"""Labs: textbook claims about neural networks, each reproduced by running an experiment.

A lab trains small networks, measures what the claim is about, draws figures and checks
each claim against its numbers. ``run`` returns a :class:`LabResult`; with ``out_dir`` it
also writes the PNG figures, ``result.json`` and ``report.md`` there.

Example:
    >>> import neuralab as nl
    >>> nl.labs.list()[:2]
    ['perceptron', 'linear-collapse']
    >>> res = nl.labs.run("backprop", quick=True)
    >>> all(c.held for c in res.claims)
    True
"""
from __future__ import annotations

import builtins
import importlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# lab name -> (module under neuralab.labs, the question it answers)
LABS: dict[str, tuple[str, str]] = {
    "perceptron": ("perceptron", "What can a single perceptron learn, and what can it not?"),
    "linear-collapse": ("linear_collapse", "Why does a neural network need non-linear activations?"),
    "activations": ("activations", "How do sigmoid, tanh, ReLU, leaky ReLU and GELU compare?"),
    "backprop": ("backprop", "How do forward and backward propagation work, number by number?"),
    "vanishing-gradients": ("vanishing_gradients",
                            "What is the vanishing gradient problem, and how do ReLU, batch "
                            "normalisation and residual connections fix it?"),
    "overfitting": ("overfitting", "How do L2, dropout and early stopping curb overfitting?"),
    "normalization": ("normalization", "Why normalise the inputs?"),
    "optimizers": ("optimizers", "How do gradient descent, momentum and Adam differ?"),
    "search": ("search", "Grid or random search: which tunes hyperparameters better?"),
}


@dataclass
class Claim:
    """One textbook statement, whether the experiment bore it out, and the numbers behind it.

    Example: ``Claim("sigmoid's derivative peaks at 0.25", True, {"max": 0.25})``
    """

    sentence: str
    held: bool
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabResult:
    """What a lab found: its question, figures, a table of results and its claims.

    Example:
        >>> res = nl.labs.run("perceptron", quick=True)
        >>> res.columns, res.rows[0]
        (['model', 'accuracy', 'converged', 'epochs', 'mistakes in last epoch'], ['perceptron on AND', 1.0, True, ...])
    """

    name: str
    question: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # free text, e.g. backprop's worked steps
    quick: bool = False
    seed: int = 0

    @property
    def table(self) -> list[list[Any]]:
        """The table as rows, the first row being the column names.

        Example: ``result.table[0]  # the column names``
        """
        return [builtins.list(self.columns)] + [builtins.list(r) for r in self.rows]

    @property
    def passed(self) -> bool:
        """True when every claim held.

        Example: ``assert nl.labs.run("backprop", quick=True).passed``
        """
        return all(c.held for c in self.claims)

    def claim(self, sentence_start: str) -> Claim:
        """The claim whose sentence starts with ``sentence_start`` (for tests).

        Example: ``result.claim("sigmoid's derivative").held``
        """
        for c in self.claims:
            if c.sentence.startswith(sentence_start):
                return c
        raise KeyError(f"lab {self.name!r} has no claim starting with {sentence_start!r}")

    def to_dict(self) -> dict[str, Any]:
        """The whole result as JSON-ready data (question, table, claims, figures, notes).

        Example: ``json.dumps(result.to_dict())``
        """
        return _jsonable(asdict(self))

    def format_table(self) -> str:
        """The table as aligned plain text.

        Example: ``print(result.format_table())``
        """
        cells = [[_fmt(v) for v in row] for row in self.table]
        if not cells or not cells[0]:
            return ""
        widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(cells[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def format_claims(self) -> str:
        """One verdict line per claim: HELD or FAILED, the sentence and its numbers.

        Example: ``print(result.format_claims())``
        """
        out = []
        for c in self.claims:
            nums = ", ".join(f"{k}={_fmt(v)}" for k, v in c.numbers.items())
            out.append(f"[{'HELD' if c.held else 'FAILED'}] {c.sentence}" + (f"  ({nums})" if nums else ""))
        return "\n".join(out)

    def report(self) -> str:
        """A short Markdown report: question, table, claims, figures.

        Example: ``Path("report.md").write_text(result.report())``
        """
        md = [f"# Lab `{self.name}`", "", f"**Question:** {self.question}", "",
              f"Mode: {'quick' if self.quick else 'full'}, seed {self.seed}.", ""]
        if self.rows:
            md += ["| " + " | ".join(map(str, self.columns)) + " |",
                   "|" + "---|" * len(self.columns)]
            md += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in self.rows]
            md.append("")
        md += ["## Claims", ""]
        for c in self.claims:
            nums = ", ".join(f"{k} = {_fmt(v)}" for k, v in c.numbers.items())
            md.append(f"- **{'held' if c.held else 'FAILED'}**: {c.sentence}" + (f" ({nums})" if nums else ""))
        if self.notes:
            md += ["", "## Worked steps", "", "```", *self.notes, "```"]
        if self.figures:
            md += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in self.figures]
        return "\n".join(md) + "\n"

    def __str__(self) -> str:
        parts = [f"lab {self.name}: {self.question}"]
        if self.notes:
            parts.append("\n".join(self.notes))
        if self.rows:
            parts.append(self.format_table())
        parts.append(self.format_claims())
        if self.figures:
            parts.append("figures: " + ", ".join(self.figures))
        return "\n\n".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4g}"
    return str(v)


def _jsonable(obj: Any) -> Any:
    # NumPy scalars and arrays inside claims' numbers become plain Python values.
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (builtins.list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def list() -> builtins.list[str]:  # noqa: A001 - the documented name is labs.list()
    """The names of the labs, in teaching order.

    Example: ``nl.labs.list()  # ['perceptron', 'linear-collapse', ...]``
    """
    return builtins.list(LABS)


def question(name: str) -> str:
    """The question a lab answers. Example: ``nl.labs.question("backprop")``"""
    return LABS[_check_name(name)][1]


def _check_name(name: str) -> str:
    key = name.replace("_", "-").lower()
    if key not in LABS:
        raise ValueError(f"unknown lab {name!r}; the labs are: {', '.join(LABS)}")
    return key


def _one_blas_thread():
    """Limit BLAS to one thread while a lab runs.

    The labs multiply small matrices (batches of 32 to 256 rows), where threads cost more
    than they give; on a busy machine OpenBLAS's spinning threads made a lab 10-40x slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def run(name: str, quick: bool = False, out_dir: str | os.PathLike | None = None,
        seed: int = 0) -> LabResult:
    """Run one lab and return its :class:`LabResult`.

    Args:
        name: a name from :func:`list`, e.g. ``"vanishing-gradients"``.
        quick: a smaller experiment (seconds instead of minutes) making the same claims.
        out_dir: if given, write the figures (PNG), ``result.json`` and ``report.md`` there.
        seed: seeds every random choice of the lab.

    Example: ``nl.labs.run("perceptron", quick=True, out_dir="out/perceptron")``
    """
    key = _check_name(name)
    try:
        module = importlib.import_module(f"{__name__}.{LABS[key][0]}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{LABS[key][0]}":
            raise
        raise NotImplementedError(f"lab {key!r} is listed but not written yet") from None
    out = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
    with _one_blas_thread():
        result: LabResult = module.run(quick=quick, out_dir=out, seed=seed)
    result.name, result.question, result.quick, result.seed = key, LABS[key][1], quick, seed
    if out is not None:
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
        (out / "report.md").write_text(result.report())
    return result


__all__ = ["Claim", "LabResult", "LABS", "list", "run", "question"]
