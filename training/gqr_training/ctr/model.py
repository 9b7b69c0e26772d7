"""The CTR predictor network: a BERT/ALBERT/RoBERTa encoder with a learned domain embedding
(and optionally an exact-match embedding) added to its token embeddings, and a two-layer MLP
head on [CLS] giving the click logit."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from gqr_training.ctr.inputs import Variant, check_variant

Backbone = Literal["bert", "albert", "roberta"]
BACKBONES: tuple[str, ...] = get_args(Backbone)
CONFIG_FILE = "ctr_config.json"
MATCH_IDS = 4  # 0 none, 1 shared with the user query side, 2 with the context side, 3 both
WEIGHTS_FILE = "model.safetensors"


@dataclass
class CTRConfig:
    """Everything needed to rebuild the network and its inputs (saved as ctr_config.json)."""

    backbone: Backbone = "bert"
    """Encoder family: bert, albert or roberta."""
    variant: Variant = "ctx"
    """Input variant (Table 2): base, pid (position of k) or ctx (preceding queries)."""
    max_positions: int = 8
    """Most list positions the domain embedding knows; longer lists are refused."""
    max_length: int = 64
    """Most tokens per input, special tokens included."""
    max_query_tokens: int = 16
    """Each query is cut to this many tokens before assembly."""
    head_hidden: int = 128
    """Width of the MLP head's hidden layer."""
    negative_sampling_rate: float = 1.0
    """Share of negatives kept in training; predictions are corrected by it (calibration)."""
    match_embedding: bool = False
    """Add a learned exact-match embedding (token shared with the user query / the other
    shown queries; see ``inputs``). False in artifacts saved before it existed."""
    backbone_config: dict[str, Any] = field(default_factory=dict)
    """The transformers config of the encoder (``PretrainedConfig.to_dict()``)."""

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone={self.backbone!r}: expected one of {BACKBONES}")
        check_variant(self.variant)
        if not 1 <= self.max_positions <= 64:
            raise ValueError(f"max_positions={self.max_positions}: expected 1..64")
        if not 0.0 < self.negative_sampling_rate <= 1.0:
            raise ValueError(f"negative_sampling_rate={self.negative_sampling_rate}: need (0, 1]")

    def save(self, directory: Path) -> None:
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> CTRConfig:
        return cls(**json.loads((directory / CONFIG_FILE).read_text()))


def _classes(backbone: Backbone) -> tuple[Any, Any]:
    """(config class, model class) of a family, importing only that family's module."""
    if backbone == "bert":
        from transformers.models.bert import BertConfig, BertModel

        return BertConfig, BertModel
    if backbone == "albert":
        from transformers.models.albert import AlbertConfig, AlbertModel

        return AlbertConfig, AlbertModel
    from transformers.models.roberta import RobertaConfig, RobertaModel

    return RobertaConfig, RobertaModel


def tiny_backbone_config(
    backbone: Backbone,
    vocab_size: int,
    pad_token_id: int,
    *,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 2,
    intermediate: int = 512,
    max_length: int = 64,
    embedding_size: int = 64,
    dropout: float = 0.1,
) -> dict[str, Any]:
    """A small random-init encoder config of the given family (for tests, the sim, CPUs);
    ``dropout`` applies to hidden states, attention probabilities and the head."""
    config_cls, _ = _classes(backbone)
    kwargs: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        type_vocab_size=2,
        pad_token_id=pad_token_id,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=max_length,
    )
    if backbone == "albert":
        kwargs["embedding_size"] = embedding_size
    if backbone == "roberta":  # RoBERTa numbers positions from pad_token_id + 1
        kwargs["max_position_embeddings"] = max_length + pad_token_id + 1
    return dict(config_cls(**kwargs).to_dict())


def _build_backbone(backbone: Backbone, config: dict[str, Any]) -> nn.Module:
    config_cls, model_cls = _classes(backbone)
    return model_cls(config_cls.from_dict(config), add_pooling_layer=False)  # type: ignore[no-any-return]


class CTRModel(nn.Module):
    """p_k = sigmoid(MLP(h_[CLS])) with token + position + segment + domain embeddings."""

    def __init__(self, config: CTRConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone: Any = backbone or _build_backbone(config.backbone, config.backbone_config)
        bconf: Any = self.backbone.config
        # ALBERT factorises its embeddings: the domain embedding lives in that smaller space.
        width = getattr(bconf, "embedding_size", None) if config.backbone == "albert" else None
        width = width or bconf.hidden_size
        self.domain_embeddings = nn.Embedding(config.max_positions + 1, width)
        nn.init.normal_(self.domain_embeddings.weight, std=bconf.initializer_range)
        self.match_embeddings: nn.Embedding | None = None
        if config.match_embedding:
            self.match_embeddings = nn.Embedding(MATCH_IDS, width)
            nn.init.normal_(self.match_embeddings.weight, std=bconf.initializer_range)
        self.head = nn.Sequential(
            nn.Linear(bconf.hidden_size, config.head_hidden),
            nn.GELU(),
            nn.Dropout(bconf.hidden_dropout_prob),
            nn.Linear(config.head_hidden, 1),
        )
        self._segments = int(getattr(bconf, "type_vocab_size", 1))
        self._pad_id = int(getattr(bconf, "pad_token_id", 0) or 0)

    @classmethod
    def from_pretrained(cls, config: CTRConfig, path: str | Path) -> CTRModel:
        """Start from a local pretrained encoder (no hub); the domain embedding and head are new."""
        from transformers import AutoModel

        backbone = AutoModel.from_pretrained(str(path), add_pooling_layer=False)
        config.backbone_config = backbone.config.to_dict()
        return cls(config, backbone)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        domain_ids: torch.Tensor,
        match_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Click logits, shape (batch,). Add ``log(1/w)`` corrections outside (see scorer)."""
        if int(domain_ids.max()) > self.config.max_positions:
            raise ValueError(
                f"domain id {int(domain_ids.max())} exceeds max_positions="
                f"{self.config.max_positions} this model was trained with"
            )
        words = self.backbone.embeddings.word_embeddings(input_ids)
        embeds = words + self.domain_embeddings(domain_ids)
        if self.match_embeddings is not None:
            if match_ids is None:
                raise ValueError("this model was trained with match ids; pass match_ids")
            embeds = embeds + self.match_embeddings(match_ids)
        kwargs: dict[str, torch.Tensor] = {}
        if self.config.backbone == "roberta":
            # RoBERTa cannot derive position ids from inputs_embeds with padding in mind.
            mask = attention_mask.long()
            kwargs["position_ids"] = torch.cumsum(mask, dim=1) * mask + self._pad_id
        if self._segments < 2:  # e.g. pretrained RoBERTa has a single segment
            token_type_ids = torch.zeros_like(token_type_ids)
        out = self.backbone(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            **kwargs,
        )
        cls_state = out.last_hidden_state[:, 0]
        return self.head(cls_state).squeeze(-1)  # type: ignore[no-any-return]

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: Path, device: str | torch.device = "cpu") -> CTRModel:
        from safetensors.torch import load_file

        model = cls(CTRConfig.load(directory))
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
        return model.to(device).eval()
