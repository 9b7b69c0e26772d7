"""``gqr demo``'s CTR and DPO steps run the pipeline's own commands: its flags become a
``ctr-train`` and a ``dpo-iterate`` config, the same ones those commands parse from the
equivalent command line, so a knob of the demo reaches the trainer it names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gqr_serving.safety import OutputFilter
from gqr_training.align.beam import BeamConfig
from gqr_training.align.dpo import PrefOptions
from gqr_training.align.iterate import IterConfig
from gqr_training.align.iterate import make_parser as dpo_parser
from gqr_training.align.pairs import PairConfig
from gqr_training.ctr.train import make_parser as ctr_parser
from gqr_training.demo import make_parser

END = datetime(2025, 1, 15, tzinfo=UTC)


def test_the_ctr_step_is_ctr_train_on_the_logged_window() -> None:
    demo = make_parser().parse_config(
        ["--out", "d", "--days", "3", "--ctr-epochs", "2", "--ctr-hidden", "32", "--ctr-layers",
         "3", "--ctr-heads", "4", "--ctr-negative-rate", "0.5", "--ctr-impressions", "900",
         "--threads", "2", "--device", "cpu", "--no-progress"]
    )  # fmt: skip
    ctr = ctr_parser().parse_config(
        ["--logs", "d/logs", "--out", "d/ctr", "--version", "demo", "--end", END.isoformat(),
         "--window-days", "3", "--epochs", "2", "--device", "cpu", "--threads", "2",
         "--hidden", "32", "--layers", "3", "--heads", "4", "--intermediate", "128",
         "--negative-rate", "0.5", "--max-train-impressions", "900", "--no-progress"]
    )  # fmt: skip
    assert demo.ctr_train(Path("d/logs"), END) == ctr
    assert make_parser().parse_config([]).ctr_train(Path("l"), END).max_train_impressions is None


def test_the_dpo_step_runs_dpo_iterate_with_the_demo_s_knobs() -> None:
    demo = make_parser().parse_config(
        ["--out", "d", "--max-iterations", "2", "--delta", "-1", "--train-prompts", "64",
         "--candidates", "6", "--beam-temperatures", "0.5,0.9", "--pairs-per-prompt", "2",
         "--max-length-gap", "none", "--overlap", "none", "--dpo-lr", "1e-4", "--dpo-epochs",
         "1", "--sft-weight", "0", "--lora", "--rejected-temperature", "1.2", "--seed", "3",
         "--no-progress"]
    )  # fmt: skip
    command = dpo_parser().parse_config(
        ["--model", "d/llm/sft", "--ctr", "d/ctr/demo", "--out", "d/llm/dpo",
         "--max-iterations", "2", "--delta", "-1", "--prompts-per-iteration", "64",
         "--candidates", "6", "--temperatures", "0.5,0.9", "--pairs-per-prompt", "2",
         "--max-length-gap", "none", "--overlap", "none", "--lr", "1e-4", "--epochs", "1",
         "--sft-weight", "0", "--lora", "--seed", "3", "--no-progress"]
    )  # fmt: skip
    assert demo.dpo_iterate(Path("d/llm/sft"), Path("d/ctr/demo")) == command
    expected = IterConfig(
        max_iterations=2,
        delta=-1.0,
        prompts_per_iteration=64,
        pairs=PairConfig(
            beam=BeamConfig(beam_size=4, candidates=6, temperatures=(0.5, 0.9)),
            rejected_budget=8,
            temperature=1.2,  # the demo's own flag; dpo-iterate samples at 1.0
            pairs_per_prompt=2,
            max_length_gap=None,
            safety=OutputFilter(),  # dpo-iterate's default: every built-in output filter
        ),
        pref=PrefOptions(lr=1e-4, epochs=1.0, sft_weight=0.0, lora=True, progress=False),
        overlap="none",
        seed=3,
    )
    assert demo.iter_config(Path("d/llm/sft"), Path("d/ctr/demo")) == expected
    assert command.iter_config().pairs.temperature == 1.0
