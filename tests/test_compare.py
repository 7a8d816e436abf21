"""docs/comparison.md is what the code produces: config hash, version and training fingerprint.

Regenerating the page takes minutes (3 seeds x 15 walk-forward jobs), so CI checks the cheap
form: the page's recorded config hash is that of configs/compare.yaml (with the recorded
overrides), its cryptocast version is this one, and a short seeded training through the same
walk-forward code still gives the fingerprint recorded when the page was made.
"""

from __future__ import annotations

import importlib.util
import statistics

import pytest

from cryptocast import __version__
from cryptocast.config.schema import load_config
from cryptocast.evaluate.fingerprint import same_fingerprint, training_fingerprint
from scripts.comparison import price
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _command():
    """scripts/compare.py, the command behind make compare / compare-prob / compare-vol."""
    spec = importlib.util.spec_from_file_location("compare", REPO / "scripts" / "compare.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def meta() -> dict:
    page = (REPO / "docs" / "comparison.md").read_text()
    meta = price.parse_meta(page)
    assert meta is not None, (
        "docs/comparison.md has no compare-meta; run make compare UPDATE_DOCS=1"
    )
    return meta


def test_committed_lstm_and_gru_numbers_are_still_what_the_code_produces(meta):
    cfg = load_config(REPO / "configs" / "compare.yaml", meta["overrides"])
    cfg.backtest.models = ["lstm", "gru"]
    now = training_fingerprint(cfg)
    want = {k: meta["fingerprint"][k] for k in ("lstm", "gru")}
    assert same_fingerprint(now, want), (now, want)


def test_committed_comparison_is_multi_seed_from_this_config_and_version(meta):
    assert len(meta["seeds"]) >= 3
    cfg = load_config(REPO / "configs" / "compare.yaml", meta["overrides"])
    assert meta["config_hash"] == cfg.hash(), (
        "configs/compare.yaml changed since docs/comparison.md was made; "
        "run make compare UPDATE_DOCS=1"
    )
    assert meta["cryptocast"] == __version__


def test_code_still_produces_the_committed_numbers(meta):
    """A refactor that changes seeded initialisation, a model, the features or the training
    loop changes the fingerprint, so the committed numbers would no longer be reproducible."""
    cfg = load_config(REPO / "configs" / "compare.yaml", meta["overrides"])
    now = training_fingerprint(cfg)
    assert same_fingerprint(now, meta["fingerprint"]), (
        f"training fingerprint {now} != committed {meta['fingerprint']}: the code no longer "
        "produces docs/comparison.md; run make compare UPDATE_DOCS=1 and commit the page"
    )


def test_fingerprint_is_sensitive_to_the_seed():
    cfg = load_config(REPO / "configs" / "compare.yaml", ["backtest.models=[lstm]"])
    a = training_fingerprint(cfg)
    assert same_fingerprint(a, training_fingerprint(cfg))  # repeatable
    cfg.train.seed = 1
    assert not same_fingerprint(a, training_fingerprint(cfg))  # and it can fail


def test_pooling_reports_mean_and_spread_over_seeds():
    def summary(seed_rmse: float) -> dict:
        return {"results": [
            {"symbol": "BTC/USDT", "model": "lstm", "rmse": seed_rmse, "skill_rmse": -0.01},
            {"symbol": "BTC/USDT", "model": "persistence", "rmse": 600.0, "skill_rmse": 0.0},
        ]}  # fmt: skip

    pooled = price.pool([summary(610.0), summary(620.0), summary(630.0)])
    lstm, pers = pooled[("BTC", "lstm")], pooled[("BTC", "persistence")]
    assert lstm["varies"] and not pers["varies"]
    assert lstm["mean"]["rmse"] == pytest.approx(620.0)
    assert price._spread(lstm, "rmse") == f"620.00 ± {statistics.stdev([610, 620, 630]):.2f}"
    assert price._spread(pers, "rmse") == "600.00"
    # fewer than 3 seeds is refused before any work
    assert _command().main(["price", "--seeds", "0,1"]) == 2
