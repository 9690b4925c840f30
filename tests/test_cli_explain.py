"""`neuralab explain` on a model trained by the CLI: per-row tables, global importance, figures."""
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from neuralab.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A churn table where only age and city matter; the model is trained by the CLI."""
    d = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 10, n).round(1),
                       "city": rng.choice(["Paris", "Lyon", "Nice"], n),
                       "noise1": rng.normal(size=n), "noise2": rng.normal(size=n)})
    df["churn"] = np.where((df.age > 50) & (df.city == "Paris"), "yes", "no")
    data = d / "churn.csv"
    df.to_csv(data, index=False)
    model = d / "churn.safetensors"
    res = CliRunner().invoke(main, ["train", str(data), "--target", "churn", "--out", str(model),
                                    "--epochs", "60", "--seed", "0", "-q"])
    assert res.exit_code == 0, res.output
    return d, data, model


def _ranked(output):
    """Column names in the order printed under each row header."""
    return [line.split()[0] for line in output.splitlines() if line.startswith("  ")]


def test_rows_name_source_columns_and_rank_the_planted_ones_first(trained):
    d, data, model = trained
    plot = d / "rows.png"
    res = CliRunner().invoke(main, ["explain", str(model), str(data), "--rows", "0,1,2",
                                    "--top", "5", "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert res.output.count("row ") == 3 and "probability" in res.output
    names = _ranked(res.output)
    assert "city" in names and not any("=" in n for n in names)  # one-hot columns mapped back
    assert plot.stat().st_size > 5000


def test_global_importance_puts_age_and_city_on_top_with_permutation_importance(trained):
    d, data, model = trained
    res = CliRunner().invoke(main, ["explain", str(model), str(data), "--global",
                                    "--plot", str(d / "global.png")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "permutation" in lines[0]
    assert {lines[1].split()[0], lines[2].split()[0]} == {"age", "city"}


def test_lime_names_the_columns(trained):
    pytest.importorskip("lime")
    _, data, model = trained
    res = CliRunner().invoke(main, ["explain", str(model), str(data), "--rows", "0", "--method", "lime"])
    assert res.exit_code == 0, res.output
    ranked = _ranked(res.output)
    assert set(ranked[:2]) == {"age", "city"}


def test_image_inputs_get_a_heatmap(tmp_path):
    model = tmp_path / "digits.safetensors"
    runner = CliRunner()
    res = runner.invoke(main, ["train", "digits", "--target", "target", "--out", str(model),
                               "--epochs", "5", "--hidden", "32", "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["explain", str(model), "digits", "--rows", "3",
                               "--plot", str(tmp_path / "d.png")])
    assert res.exit_code == 0, res.output
    assert "pixel_" in res.output and (tmp_path / "d.png").stat().st_size > 3000


def test_bad_rows_and_methods_exit_2_with_one_line(trained):
    _, data, model = trained
    res = CliRunner().invoke(main, ["explain", str(model), str(data), "--rows", "5000"])
    assert res.exit_code == 2 and "rows 0 to 399" in res.output
    res = CliRunner().invoke(main, ["explain", str(model), str(data), "--rows", "a,b"])
    assert res.exit_code == 2 and "--rows" in res.output
    res = CliRunner().invoke(main, ["explain", str(model), str(data), "--global", "--method", "shap"])
    assert res.exit_code == 2 and "--global" in res.output


def test_an_embedded_category_gets_its_gradient_share(tmp_path):
    # 12 cities: embedded, not one-hot (more than 8); its code has no gradient of its own, so
    # the gradient methods differentiate its one-hot block and sum it back to the column
    rng = np.random.default_rng(1)
    n = 600
    cities = [f"city{i}" for i in range(12)]
    df = pd.DataFrame({"city": rng.choice(cities, n), "x": rng.normal(size=n),
                       "noise": rng.normal(size=n)})
    effect = dict(zip(cities, rng.permutation(np.linspace(-2, 2, 12))))
    df["y"] = np.where(df.city.map(effect) + 0.5 * df.x > 0, "yes", "no")
    data, model = tmp_path / "cities.csv", tmp_path / "cities.safetensors"
    df.to_csv(data, index=False)
    res = CliRunner().invoke(main, ["train", str(data), "--target", "y", "--out", str(model),
                                    "--preset", "fast", "--seed", "0", "-q"])
    assert res.exit_code == 0, res.output
    from neuralab import load
    assert load(model).encoding_["columns"][0]["kind"] == "embedding"
    for method in ("ig", "saliency", "gradxinput", "smoothgrad"):
        res = CliRunner().invoke(main, ["explain", str(model), str(data), "--rows", "0,1,2,3,4,5",
                                        "--method", method])
        assert res.exit_code == 0, res.output
        values = {}
        for line in res.output.splitlines():
            if line.startswith("  "):
                name, v = line.split()[:2]
                values.setdefault(name, []).append(abs(float(v)))
        assert np.mean(values["city"]) > 0.001, (method, values)  # on the codes: exactly 0
        if method != "gradxinput":  # (gradient x a one-hot 1 is small at the point itself)
            # city decides most rows: its mean |attribution| is well above the noise column's
            assert np.mean(values["city"]) > 5 * np.mean(values["noise"]), (method, values)
