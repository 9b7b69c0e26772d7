"""The Table 2 command end to end on toy simulated logs: every variant trained and scored
against the world's oracle on the same held-out instances, the knobs reaching ctr-train."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gqr_training.cli import main as gqr
from gqr_training.eval import ctr_table


def test_table2_on_toy_logs_reports_every_variant_and_the_oracle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    argv = ["sim", "--policy", "annotator", "--days", "3", "--impressions-per-day", "300"]
    argv += ["--out", str(logs), "--start-date", "2025-01-01", "--no-progress"]
    argv += ["--eval-requests", "10"]
    assert gqr(argv) == 0
    out = tmp_path / "table"
    rc = ctr_table.main(
        [
            "--logs", str(logs), "--out", str(out), "--backbones", "bert",
            "--variants", "base,pid,ctx", "--window-days", "3", "--epochs", "1",
            "--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64",
            "--batch-size", "64", "--negative-rate", "0.5", "--no-match-embedding",
            "--threads", "1", "--no-progress",
        ]
    )  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "table2.json").read_text())
    rows = {(r["backbone"], r["variant"]): r for r in summary["rows"]}
    assert set(rows) == {
        ("bert", "base"),
        ("bert", "pid"),
        ("bert", "ctx"),
        ("ORACLE", "true p"),
        ("ORACLE", "text-only"),
        ("ORACLE", "text-only, no context"),
    }
    for r in rows.values():
        assert 0.0 <= r["auc"] <= 1.0 and r["logloss"] > 0
    # The world's own probabilities rank clicks better than chance on the held-out day.
    assert rows[("ORACLE", "true p")]["auc"] > 0.6
    # Each thing the oracle is denied (users, then the queries above) costs it ranking power.
    assert (
        rows[("ORACLE", "true p")]["logloss"]
        < rows[("ORACLE", "text-only")]["logloss"]
        < rows[("ORACLE", "text-only, no context")]["logloss"]
    )
    # The text-only columns come with the per-user propensity (ctr-train's default).
    assert all(rows[("bert", v)]["auc_text_only"] is not None for v in ("base", "pid", "ctx"))
    assert summary["best"] in {"bert/base", "bert/pid", "bert/ctx"}
    assert "| ORACLE | true p |" in (out / "table2.md").read_text()
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["oracle_auc"] == rows[("ORACLE", "true p")]["auc"]  # not another oracle row
    assert (out / "reliability.png").stat().st_size > 0
    # The knobs reached ctr-train: each artifact says how it was trained.
    configs = [json.loads(p.read_text()) for p in (out / "artifacts").glob("*/ctr_config.json")]
    assert len(configs) == 3
    text = json.dumps(configs)
    assert '"negative_sampling_rate": 0.5' in text and '"match_embedding": false' in text
