"""The candidate model trains on the prompts it will be served: dpo-iterate refreshes each log
prompt's co-occurring queries to as many as the gateway puts in a served prompt (the spec's
``cooccurrence.neighbours``). With 5 in training against the gateway's 10, the e2e's aligned
model gained +3% true CTR on served prompts instead of +8% (measured offline on the same
stable model, predictor and logs, 2026-11-27; CHANGELOG.md)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from tests.unit.operator.cases import patched

from gqr_contracts.routing import DEFAULT_DECODING, RoutingConfig
from gqr_operator.models import parse_spec
from gqr_operator.resources.gateway import build_gateway_deployment
from gqr_operator.resources.jobs import build_pipeline_job
from gqr_operator.resources.llm import ModelVersion
from gqr_operator.resources.routing import routing_config
from gqr_serving.gateway.settings import GatewaySettings
from gqr_training.align.iterate import IterConfig, make_parser, prompt_pool
from gqr_training.align.metrics import SERVING_TEMPERATURE, SERVING_TOP_P

INPUTS = {"base_model": "pvc://store/llm/stable", "ctr_uri": "pvc://store/ctr/1", "cor_uri": "x"}


def _args(manifest: dict[str, Any]) -> list[str]:
    return list(manifest["spec"]["template"]["spec"]["containers"][0]["args"])


@pytest.mark.parametrize("neighbours", [None, 3, 25])
def test_dpo_iterate_prompts_carry_as_many_cooccurring_queries_as_served(
    neighbours: int | None,
) -> None:
    cor: dict[str, Any] = {"milvus": {"mode": "external", "uri": "http://m:19530"}}
    if neighbours is not None:
        cor["neighbours"] = neighbours
    spec = parse_spec(patched(cooccurrence=cor))
    job = build_pipeline_job("x", "ns", spec, step="dpo-iterate", run_id="7", inputs=INPUTS)
    trained: argparse.Namespace = make_parser().parse_args(_args(job))
    served = GatewaySettings.from_sources(_args(build_gateway_deployment("x", "ns", spec)), env={})
    assert trained.cor_k == served.cor_k == (neighbours or 10)
    assert (served.impression_ttl_s, served.expose_arm) == (86400, False)
    assert [p.name for p in served.verify_key_files] == ["previous", "next"]
    assert trained.cor is not None  # the prompts are refreshed from the run's COR artifact


def test_every_dpo_setting_of_the_spec_reaches_dpo_iterate() -> None:
    """What a user sets under spec.training.dpo is what the trainer runs with (parsed by the
    trainer's own argument parser, not string-matched), including the prompts per iteration
    and enough distinct log prompts for every iteration."""
    dpo = {
        "beta": 0.3,
        "delta": 0.01,
        "maxIterations": 4,
        "beamSize": 2,
        "candidates": 12,
        "promptsPerIteration": 900,
        "lora": False,
    }
    spec = parse_spec(patched(training={"dpo": dpo}))
    job = build_pipeline_job("x", "ns", spec, step="dpo-iterate", run_id="7", inputs=INPUTS)
    a = make_parser().parse_args(_args(job))
    got = (a.beta, a.delta, a.max_iterations, a.beam_size, a.candidates, a.lora)
    assert got == (0.3, 0.01, 4, 2, 12, False)
    assert a.prompts_per_iteration == 900
    assert prompt_pool(a) == 3600  # 900 distinct prompts for each of the 4 iterations
    default = make_parser().parse_args(
        _args(
            build_pipeline_job(
                "x", "ns", parse_spec(patched()), step="dpo-iterate", run_id="7", inputs=INPUTS
            )
        )
    )
    assert default.prompts_per_iteration == 1024 and default.lora
    assert prompt_pool(default) == 5120  # 1024 x 5 iterations


@pytest.mark.parametrize("decoding", [None, {"temperature": 0.4, "topP": 0.75}])
def test_the_aec_gate_evaluates_responses_decoded_as_the_gateway_serves_them(
    decoding: dict[str, float] | None,
) -> None:
    """dpo-iterate's AEC (the gate's number) is measured on test responses sampled at the
    temperature and top-p the routing document tells the gateway to serve with."""
    llm = {"decoding": decoding} if decoding else {}
    spec = parse_spec(patched(llm=llm))
    job = build_pipeline_job("x", "ns", spec, step="dpo-iterate", run_id="7", inputs=INPUTS)
    trained = make_parser().parse_args(_args(job))
    stable = ModelVersion("1", spec.llm.model)
    routing = RoutingConfig.model_validate(routing_config("x", "ns", spec, stable=stable))
    served = routing.decoding_of(routing.arms[0])
    assert (trained.eval_temperature, trained.eval_top_p) == (served.temperature, served.top_p)
    if decoding is None:  # the trainer's own defaults are the gateway's
        assert (served.temperature, served.top_p) == (0.7, 0.9)
    else:
        assert (served.temperature, served.top_p) == (0.4, 0.75)


def test_trainer_serving_decoding_defaults_mirror_the_gateway() -> None:
    assert (
        DEFAULT_DECODING.temperature,
        DEFAULT_DECODING.top_p,
    ) == (SERVING_TEMPERATURE, SERVING_TOP_P)
    cfg = IterConfig()
    assert (cfg.eval_temperature, cfg.eval_top_p) == (SERVING_TEMPERATURE, SERVING_TOP_P)
    bare = make_parser().parse_args(["--model", "m", "--ctr", "c", "--logs", "l", "--out", "o"])
    assert (bare.eval_temperature, bare.eval_top_p) == (SERVING_TEMPERATURE, SERVING_TOP_P)


@pytest.mark.parametrize(
    ("flag", "value", "accepted"),
    [("--eval-top-p", "0", "(0, 1]"), ("--eval-top-p", "1.5", "(0, 1]"),
     ("--eval-temperature", "-1", ">= 0")],
)  # fmt: skip
def test_bad_eval_decoding_is_refused_naming_the_value(
    flag: str, value: str, accepted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--model", "m", "--ctr", "c", "--logs", "l", "--out", "o", flag, value]
    with pytest.raises(SystemExit):
        make_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert flag in err and repr(value) in err and accepted in err
