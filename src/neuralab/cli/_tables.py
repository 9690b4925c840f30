"""Plain-text tables the commands print: the train/validation/test scores and evaluate's metrics.

Example: ``print(format_scores({"train": {"loss": 0.1, "accuracy": 0.99}}))``
"""
from __future__ import annotations



def format_scores(table: dict[str, dict[str, float]]) -> str:
    """One row per part (train, validation, test), one column per metric.

    Example: ``format_scores({"test": {"accuracy": 0.98}})``
    """
    cols = list(next(iter(table.values())))
    lines = [f"{'':<11}" + "".join(f"{c:>11}" for c in cols)]
    for split, values in table.items():
        lines.append(f"{split:<11}" + "".join(f"{values[c]:>11.4f}" for c in cols))
    return "\n".join(lines)


def format_metrics(result: dict) -> str:
    """A plain-text table of ``evaluate_frame``'s result.

    Example: ``print(format_metrics(evaluate_frame(model, frame)))``
    """
    lines = []
    if result["task"] == "regression":
        lines.append(f"rows: {result['rows']}")
        for k in ("mse", "mae", "r2"):
            lines.append(f"{k.upper():<4} {result[k]:.6g}")
        return "\n".join(lines)
    lines.append(f"rows: {result['rows']}   accuracy: {result['accuracy']:.4f}")
    width = max(8, *(len(str(c["label"])) for c in result["per_class"]))
    lines.append("")
    lines.append(f"{'class':<{width}}  precision  recall  f1      support")
    for c in result["per_class"]:
        lines.append(f"{c['label']:<{width}}  {c['precision']:<9.4f}  {c['recall']:<6.4f}  "
                     f"{c['f1']:<6.4f}  {c['support']}")
    lines.append("")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    labels = [str(lab) for lab in result["labels"]]
    cw = max(5, *(len(lab) for lab in labels))
    lines.append(" " * (width + 2) + "  ".join(f"{lab:>{cw}}" for lab in labels))
    for lab, row in zip(labels, result["confusion_matrix"]):
        lines.append(f"{lab:<{width}}  " + "  ".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)
