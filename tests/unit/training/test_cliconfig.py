"""Every training command's flags come from its config dataclass (gqr_training.cliconfig):
each flag has help, a bad value is refused naming the flag, the value and what is accepted
(on the command line and in a config built in code), and the flags parse back into the same
config."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gqr_training import cli
from gqr_training.align.iterate_config import DPOIterateConfig
from gqr_training.cliconfig import ConfigParser
from gqr_training.ctr.train_config import CTRTrainConfig
from gqr_training.demo_config import DemoConfig

COMMANDS = {
    **{name: module for name, (module, _) in cli.DISPATCHED.items()},
    "ctr-table": "gqr_training.eval.ctr_table",
    "reward-picks": "gqr_training.eval.reward_picks",
    "cor-evaluate": "gqr_training.cor.evaluate",
    "simcse": "gqr_training.cor.simcse",
}
REQUIRED = {
    "ctr-train": ["--logs", "l", "--out", "o"],
    "dpo-iterate": ["--model", "m", "--ctr", "c", "--out", "o"],
    "sft": ["--data", "d", "--out", "o"],
    "cor-build": ["--source", "tsv", "--input", "i", "--artifact-root", "a"],
    "annotate": ["--teacher-url", "u", "--requests", "r", "--out", "o"],
    "ctr-table": ["--logs", "l", "--out", "o"],
}


def parser(name: str) -> ConfigParser[Any]:
    made: ConfigParser[Any] = importlib.import_module(COMMANDS[name]).make_parser()
    return made


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_flag_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    p = parser(name)
    flags = [a for a in p._actions if a.option_strings and a.dest != "help"]
    assert {a.dest for a in flags} == {f.name for f in dataclasses.fields(p.config)}
    for action in flags:
        assert action.help and len(action.help) > 3, action.option_strings
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["--help"])
    assert exc.value.code == 0
    shown = capsys.readouterr().out
    for action in flags:
        assert action.option_strings[0] in shown


def test_a_field_without_help_is_refused_when_the_parser_is_built() -> None:
    @dataclass(kw_only=True)
    class Bare:
        size: int = field(default=1, metadata={})

    with pytest.raises(TypeError, match=r"Bare\.size: every field needs metadata\['help'\]"):
        ConfigParser(Bare)


@pytest.mark.parametrize(
    ("name", "flag", "value", "accepted"),
    [
        ("ctr-train", "--epochs", "0", "expected a whole number >= 1"),
        ("ctr-train", "--negative-rate", "1.5", "expected a share in (0, 1]"),
        ("ctr-train", "--lr", "abc", "expected a number > 0"),
        ("ctr-train", "--user-prior", "0", "expected auto or a positive number"),
        ("ctr-train", "--max-positions", "65", "expected a whole number in [1, 64]"),
        ("dpo-iterate", "--eval-top-p", "1.5", "expected a top-p in (0, 1]"),
        ("dpo-iterate", "--temperatures", "0.7,x", "expected comma-separated temperatures"),
        ("dpo-iterate", "--beta", "0", "expected a number > 0"),
        ("sft", "--batch-size", "0", "expected a whole number >= 1"),
        ("cor-build", "--partitions", "300", "expected auto or a whole number 0-256"),
        ("cor-build", "--start", "yesterday", "expected an ISO 8601 date/time"),
        ("demo", "--beam-temperatures", "-1", "expected comma-separated temperatures >= 0"),
        ("demo", "--days", "0", "expected a whole number >= 1"),
        ("annotate", "--augment", "-1", "expected a whole number >= 0"),
        ("ctr-table", "--variants", "pid,bogus", "expected comma-separated names of base"),
    ],
)
def test_a_bad_value_is_refused_naming_flag_value_and_what_is_accepted(
    name: str, flag: str, value: str, accepted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parser(name).parse_config([*REQUIRED.get(name, []), flag, value])
    assert exc.value.code == 2
    assert f"{flag} {value!r}: {accepted}" in capsys.readouterr().err


def test_a_config_built_in_code_is_checked_by_the_same_rules() -> None:
    with pytest.raises(ValueError, match=r"--eval-top-p 1\.5: expected a top-p in \(0, 1\]"):
        DPOIterateConfig(model="m", ctr="c", out=Path("o"), eval_top_p=1.5)
    with pytest.raises(ValueError, match="--variant 'bogus': expected one of base, pid, ctx"):
        CTRTrainConfig(logs="l", out="o", variant="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"--ctr-hidden 0: expected a whole number >= 1"):
        DemoConfig(ctr_hidden=0)


def test_a_cross_field_error_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser("align-table").parse_config(["--rows", "SFT,bogus"])
    assert exc.value.code == 2
    assert "--rows 'SFT,bogus': unknown ['bogus']" in capsys.readouterr().err


def argv_of(config: Any) -> list[str]:
    """The command line that says ``config``: what the operator or a script would pass."""
    out: list[str] = []
    for f in dataclasses.fields(config):
        value, flag = getattr(config, f.name), "--" + f.name.replace("_", "-")
        if f.metadata.get("flag"):
            flag = f.metadata["flag"]
        if isinstance(value, bool):
            if f.metadata.get("negatable"):
                out.append(flag if value else "--no-" + flag[2:])
            elif value:
                out.append(flag)
        elif value is None:
            out += [flag, "none"] if f.name == "max_length_gap" else []
        elif isinstance(value, tuple):
            out += [flag, ",".join(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


@pytest.mark.parametrize(
    "config",
    [
        DPOIterateConfig(
            model="m", ctr="py:a:b", out=Path("o"), logs="l", cor="c", max_prompts=900,
            temperatures=(0.5, 0.9, 1.3), max_length_gap=None, eval_top_p=0.75, no_beam=True,
            lora=True, bf16=True, overlap="embedding", result_file=Path("/dev/termination-log"),
        ),
        CTRTrainConfig(
            logs="l", out="o", version="7", backbone="albert", variant="pid",
            match_embedding=False, user_prior=5.0, threads=2, resume=True,
        ),
        DemoConfig(out=Path("d"), model="m", beam_temperatures=(1.0,), lora=True, threads=1),
    ],
    ids=["dpo-iterate", "ctr-train", "demo"],
)  # fmt: skip
def test_flags_parse_back_into_the_same_config(config: Any) -> None:
    p = ConfigParser(type(config))
    assert p.parse_config(argv_of(config)) == config


def test_parsed_flags_are_the_config_the_command_runs_with() -> None:
    argv = ["--model", "m", "--ctr", "c", "--out", "o", "--temperatures", "0.5,1.0"]
    cfg = parser("dpo-iterate").parse_config([*argv, "--max-length-gap", "none", "--lora"])
    assert isinstance(cfg, DPOIterateConfig)
    assert (cfg.temperatures, cfg.max_length_gap, cfg.lora) == ((0.5, 1.0), None, True)
    assert cfg.out == Path("o") and cfg.window_days == 14 and cfg.end == "now"
