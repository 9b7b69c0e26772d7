"""Per-user click propensity (users.py): fitted after training, stored in the artifact, applied
by the scorer and the KServe parsers when a list comes with its (hashed) user key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gqr_training.ctr.scorer import CTRScorer, ScoringInputError
from gqr_training.ctr.users import FILE, UserPropensity, fit

EAGER = {f"u{i}": 3.0 for i in range(10)}
SHY = {f"u{i}": 0.2 for i in range(10, 20)}


def test_fit_moves_heavy_users_and_shrinks_light_ones_towards_one() -> None:
    keys = ["heavy"] * 1000 + ["light"] * 4 + ["never"] * 500
    clicked = [1] * 200 + [0] * 800 + [1] * 4 + [0] * 500
    expected = [0.1] * 1000 + [0.1] * 4 + [0.1] * 500
    users = fit(keys, clicked, expected, prior=10.0)
    assert users.factor("heavy") == pytest.approx((200 + 10) / (100 + 10))  # ~1.9
    # 4 clicks where 0.4 were expected is a raw ratio of 10; four impressions prove little
    assert users.factor("light") == pytest.approx(14 / 10.4)
    assert users.factor("never") == pytest.approx(10 / 60)
    assert users.factor("stranger") == users.factor(None) == users.factor("") == 1.0
    assert fit(keys, clicked, expected, max_users=1).factors.keys() == {"heavy"}
    f = 210 / 110
    got = users.apply([0.6, 0.01], "heavy")  # odds times f: ~p f when small, always below 1
    assert got == pytest.approx([0.6 * f / (0.4 + 0.6 * f), 0.01 * f / (0.99 + 0.01 * f)])
    assert got[0] < 1.0 and got[1] == pytest.approx(0.01 * f, rel=0.01)


def test_fit_refuses_mismatched_rows_and_a_bad_prior() -> None:
    with pytest.raises(ValueError, match="2 user keys, 1 labels and 2 probabilities"):
        fit(["a", "b"], [1], [0.1, 0.2])
    with pytest.raises(ValueError, match="prior=0"):
        fit(["a"], [1], [0.1], prior=0)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    users = UserPropensity({"a": 1.5, "b": 0.5}, prior=10.0)
    users.save(tmp_path)
    assert UserPropensity.load(tmp_path) == users
    assert UserPropensity.load(tmp_path / "missing") is None


@pytest.fixture(scope="module")
def personal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.unit.ctr.synth import logs_and_train_argv

    from gqr_training.ctr.train import main

    tmp = tmp_path_factory.mktemp("ctr-users")
    argv = logs_and_train_argv(
        tmp,
        3,
        600,
        "--epochs",
        "4",
        "--negative-rate",
        "1",
        "--version",
        "v",
        propensity={**EAGER, **SHY},
    )
    assert main(argv) == 0
    return tmp / "art" / "v"


def test_training_learns_who_clicks_more_and_it_shows_in_the_held_out_metrics(
    personal: Path,
) -> None:
    import json

    assert (personal / FILE).is_file()
    metrics = json.loads((personal / "metrics.json").read_text())
    # users click 0.2x to 3x as often: knowing them must beat the text alone on held-out data
    assert metrics["auc"] > metrics["auc_text_only"]
    assert metrics["logloss"] < metrics["logloss_text_only"]
    users = UserPropensity.load(personal)
    assert users is not None
    # every eager user is found above 1, every shy one below (shrunk: ~150 shown queries each)
    assert min(users.factor(u) for u in EAGER) > 1.1
    assert max(users.factor(u) for u in SHY) < 0.9


def test_scorer_applies_a_known_users_propensity(personal: Path) -> None:
    scorer = CTRScorer.load(personal)
    base = scorer.score("paris price", ["paris tips", "tokyo history"])
    eager = scorer.score("paris price", ["paris tips", "tokyo history"], user_key="u0")
    shy = scorer.score("paris price", ["paris tips", "tokyo history"], user_key="u15")
    stranger = scorer.score("paris price", ["paris tips", "tokyo history"], user_key="nobody")
    assert stranger == base
    assert all(e > b > s for e, b, s in zip(eager, base, shy, strict=True))
    both = scorer.score_batch(
        [("paris price", ["paris tips"]), ("paris price", ["paris tips"])], user_keys=["u0", None]
    )
    assert both[0][0] == pytest.approx(eager[0]) and both[1][0] == pytest.approx(base[0])
    with pytest.raises(ScoringInputError, match="user_keys: 1 given for 2 lists"):
        scorer.score_batch([("q", ["a"]), ("q", ["b"])], user_keys=["u0"])
    with pytest.raises(ScoringInputError, match=r"\[0\].user_key: expected a string"):
        scorer.score("q", ["a"], user_key="x" * 300)


def test_prior_is_chosen_on_the_last_day_and_strong_evidence_wants_little_shrinkage() -> None:
    import random

    from gqr_training.ctr.users import PRIORS, select_prior

    rng = random.Random(0)
    keys, clicked, expected, days = [], [], [], []
    for day in range(4):
        for u in range(20):  # 20 users, 300 shown queries a day each, propensity 0.5x or 2x
            f = 2.0 if u % 2 else 0.5
            for _ in range(300):
                keys.append(f"u{u}")
                expected.append(0.05)
                clicked.append(int(rng.random() < 0.05 * f))
                days.append(day)
    prior, losses = select_prior(keys, clicked, expected, days)
    assert set(losses) == set(PRIORS) and prior == min(losses, key=losses.__getitem__)
    assert prior <= 5.0  # ~45 clicks a user a day: the data, not the prior, should speak
    assert select_prior(keys[:10], clicked[:10], expected[:10], [0] * 10) == (10.0, {})


def test_bad_user_prior_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from gqr_training.ctr.train import make_parser

    assert make_parser().parse_args(["--logs", "l", "--out", "o"]).user_prior is None  # auto
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--logs", "l", "--out", "o", "--user-prior", "0"])
    assert "--user-prior '0': expected auto or a positive number" in capsys.readouterr().err
