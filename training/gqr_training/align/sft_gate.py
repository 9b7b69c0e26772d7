"""The bootstrap stage's AEC gate, measured by ``sft``: the fine-tuned model against the
stable one as it is served (the base model with the gateway's few-shot demonstrations), on the
same fixed test prompts of the log window and the same CTR predictor, decoded as served.

The test prompts are ``gqr_training.align.logprompts``' hashed tenth, the same set dpo-iterate
measures on; ``gqr annotate --logs`` never annotates them. The operator's gate compares the two
numbers the way it compares dpo-iterate's (``aec`` - ``aec_stable`` > ``minAecGain``).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from gqr_contracts.job import AEC, AEC_STABLE

if TYPE_CHECKING:
    from gqr_serving.prompt import TaskPreset
    from gqr_training.align.data import Task
    from gqr_training.align.scoring import ListScorer
    from gqr_training.align.sft_config import SFTCommandConfig


@dataclasses.dataclass(frozen=True)
class Gate:
    """What the gate measures with: the preset, the test tasks and the CTR predictor."""

    preset: TaskPreset
    tasks: list[Task]
    scorer: ListScorer
    cfg: SFTCommandConfig

    def aec(self, model: Any, tokenizer: Any, few_shot: int = 0) -> float:
        """The AEC of ``model`` on the test tasks, ``few_shot`` demonstrations before each
        prompt (as the gateway serves an arm with that many)."""
        from gqr_serving.prompt.fewshot import prefix_text
        from gqr_training.align.generate import HFEngine
        from gqr_training.align.metrics import evaluate

        prefix = prefix_text(self.preset, few_shot)
        tasks = [dataclasses.replace(t, prompt=prefix + t.prompt) for t in self.tasks]
        c = self.cfg
        engine = HFEngine(model, tokenizer, c.device, seed=c.seed, top_p=c.eval_top_p)
        return float(
            evaluate(engine, self.preset, tasks, self.scorer, None, c.eval_temperature)["aec"]
        )


def load_gate(cfg: SFTCommandConfig) -> Gate | None:
    """The gate's inputs (None without ``--ctr``); read before training, so a bad predictor
    or an empty log window fails before the hours of fine-tuning."""
    if not cfg.ctr:
        return None
    if not cfg.logs:
        raise ValueError("--ctr needs --logs: the gate's test prompts come from the log window")
    from gqr_serving.prompt import load_preset
    from gqr_serving.prompt.fewshot import demonstrations
    from gqr_training.align.data import make_task
    from gqr_training.align.iterate import load_scorer
    from gqr_training.align.logprompts import prompts_from_logs
    from gqr_training.output import input_dir
    from gqr_training.window import resolve_window

    preset = load_preset(cfg.task)
    demonstrations(preset, cfg.stable_few_shot)  # a task without enough fails here
    start, end = resolve_window(cfg, cfg.logs)
    got = prompts_from_logs(
        cfg.logs, start, end, cfg.task, max_train=1, max_test=cfg.test_size,
        cor_root=cfg.cor, cor_k=cfg.cor_k,
    )  # fmt: skip
    ctr = cfg.ctr if cfg.ctr.startswith("py:") else input_dir(cfg.ctr, require=("ctr_config.json",))
    print(f"gate: {len(got.test)} test prompts from {got.impressions} impressions", file=sys.stderr)
    return Gate(preset, [make_task(preset, r) for r in got.test], load_scorer(ctr, cfg.device), cfg)


def gate_metrics(stable: float, candidate: float) -> dict[str, float]:
    """The JobResult metrics the operator's gate reads."""
    return {AEC: candidate, AEC_STABLE: stable}
