"""``gqr demo`` end to end at toy size: every stage runs for real (simulated logs, the CTR
predictor, SFT and DPO with TRL on a tiny LM, the A/B test) and writes its report; a rerun on
the same folder resumes from the finished stages instead of recomputing them.

The demo's real size (and its < 15 minute budget) is measured in docs/demo.md, not here."""

from __future__ import annotations

import json
import math
from pathlib import Path

from gqr_training.demo import make_parser, run

TOY = [
    "--days", "2",
    "--impressions-per-day", "300",
    "--sft-requests", "60",
    "--sft-epochs", "1",
    "--train-prompts", "12",
    "--test-prompts", "20",
    "--max-iterations", "1",
    "--delta", "-1",
    "--ab-requests", "80",
    "--ctr-epochs", "1",
    "--ctr-hidden", "32",
    "--candidates", "4",
    "--max-length-gap", "none",  # 12 toy prompts: a pair must exist, whatever its lengths
    "--threads", "1",
    "--no-progress",
]  # fmt: skip


def test_demo_runs_every_stage_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    report = run(make_parser().parse_config(["--out", str(out), *TOY]))
    for name in ("report.json", "report.md", "iterations.png", "logs/.done"):
        assert (out / name).exists(), name
    saved = json.loads((out / "report.json").read_text())
    assert saved["stages_s"].keys() >= {"logs", "cor", "ctr", "sft", "dpo", "ab"}
    assert [it["iteration"] for it in saved["iterations"]] == [0.0, 1.0]
    for it in saved["iterations"]:
        assert 0.0 <= it["true_ctr"] <= 1.0 and 0.0 <= it["aec"] <= 1.0
    # The world's best list is the ceiling of every policy, the annotator's included.
    assert saved["oracle_true_ctr"] > max(saved["annotator"]["true_ctr"], saved["sft"]["true_ctr"])
    arms = [k for k in saved["ab"] if k != "lift"]
    assert sum(saved["ab"][a]["impressions"] for a in arms) == 80
    lo, hi = saved["ab"]["lift"]["absolute_ci95"]
    assert lo <= saved["ab"]["lift"]["absolute"] <= hi
    md = (out / "report.md").read_text()
    assert "| SFT |" in md and "A/B test" in md
    assert math.isclose(report["sft"]["true_ctr"], saved["sft"]["true_ctr"])

    # Rerun: logs, CTR artifact, SFT model and the finished DPO iteration are reused.
    again = run(make_parser().parse_config(["--out", str(out), *TOY]))
    assert len(again["iterations"]) == len(saved["iterations"])
    for a, b in zip(again["iterations"], saved["iterations"], strict=True):
        assert math.isclose(a["aec"], b["aec"], rel_tol=1e-6)
    assert again["stages_s"]["ctr"] < saved["stages_s"]["ctr"]
    assert again["stages_s"]["sft"] < saved["stages_s"]["sft"]

    # Table 3 on the finished demo: the click rows train on pairs from the logged clicks; the
    # few-shot row prompts a base LM pretrained on the logs' unlabelled text.
    from gqr_training.eval import align_table

    table = tmp_path / "table3"
    rows = "few-shot,SFT,SFT_clk,DPO_clk,DPO_ctr,-COR"
    assert align_table.main(["--demo", str(out), "--out", str(table), "--rows", rows]) == 0
    t3 = json.loads((table / "table3.json").read_text())
    assert list(t3["rows"]) == rows.split(",")
    clk = t3["pairs"]["clk"]
    assert 0 < clk["pairs"] <= t3["pairs"]["ctr"] and clk["with_both"] >= clk["pairs"]
    for name in rows.split(","):
        assert 0.0 <= t3["rows"][name]["true_ctr"] <= 1.0
    assert "| DPO_clk |" in (table / "table3.md").read_text()
    assert "| few-shot |" in (table / "table3.md").read_text()
    assert (table / "base" / "config.json").exists()  # the base LM, reused by a rerun
    # (At this toy size the comparison says nothing; docs/demo.md has the measured row.)

    # How the predictor picks among the SFT model's own candidates, per position.
    from gqr_training.eval import reward_picks

    picks = tmp_path / "picks.json"
    argv = ["--demo", str(out), "--requests", "8", "--candidates", "4", "--out", str(picks)]
    assert reward_picks.main(argv) == 0
    got = json.loads(picks.read_text())
    assert [p["position"] for p in got["positions"]] == [1, 2, 3]
    for p in got["positions"]:
        if p["requests"]:  # the best candidate is the ceiling of any pick
            assert p["true_p_mean"] <= p["true_p_of_best"] + 1e-12
            assert p["true_p_of_pick"] <= p["true_p_of_best"] + 1e-12
    assert picks.with_suffix(".png").exists()
