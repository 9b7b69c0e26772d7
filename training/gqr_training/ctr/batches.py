"""Turn texts into padded tensors and run the network in batches: the code path shared by
training, evaluation and the scorer, so all three see exactly the same inputs."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from gqr_training.ctr.calibration import logit_offset
from gqr_training.ctr.data import Instance, LoggedImpression
from gqr_training.ctr.inputs import Encoded, Layout, encode, pad
from gqr_training.ctr.model import CTRConfig, CTRModel
from gqr_training.ctr.tokenization import TokenCache


class InputEncoder:
    """Tokenizer + layout + variant: texts in, ``Encoded`` inputs out."""

    def __init__(self, tokenizer: Any, config: CTRConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.layout = Layout(
            cls_id=int(tokenizer.cls_token_id),
            sep_id=int(tokenizer.sep_token_id),
            pad_id=int(tokenizer.pad_token_id),
            max_length=config.max_length,
            max_query_tokens=config.max_query_tokens,
        )
        self.tokens = TokenCache(tokenizer, config.max_query_tokens)

    def encode_instances(
        self, impressions: Sequence[LoggedImpression], items: Sequence[Instance]
    ) -> list[Encoded]:
        out = []
        for i, k in items:
            imp = impressions[i]
            shown = [self.tokens(q) for q in imp.queries[: k + 1]]
            out.append(encode(self.layout, self.config.variant, self.tokens(imp.query), shown, k))
        return out

    def encode_lists(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> list[Encoded]:
        """All positions of all lists, flattened in order."""
        out: list[Encoded] = []
        for user_query, queries in pairs:
            user = self.tokens(user_query)
            shown = [self.tokens(q) for q in queries]
            out.extend(
                encode(self.layout, self.config.variant, user, shown, k)
                for k in range(len(queries))
            )
        return out

    def tensors(self, batch: Sequence[Encoded], device: str | torch.device) -> dict[str, Any]:
        padded = pad(batch, self.layout.pad_id)
        return {k: torch.tensor(v, dtype=torch.long, device=device) for k, v in padded.items()}


def autocast(device: str | torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; nothing on CPU (bf16 matmuls are slower there)."""
    if torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_probs(
    model: CTRModel,
    encoder: InputEncoder,
    encoded: Sequence[Encoded],
    *,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Calibrated click probabilities (negative down-sampling undone) for each input."""
    was_training = model.training
    model.eval()
    offset = logit_offset(model.config.negative_sampling_rate)
    # Predict in length order (little padding), answer in input order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    out = [0.0] * len(encoded)
    try:
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            with autocast(device):
                logits = model(**encoder.tensors([encoded[i] for i in idx], device))
            probs = torch.sigmoid(logits.float() + offset).tolist()
            for i, p in zip(idx, probs, strict=True):
                out[i] = p
    finally:
        model.train(was_training)
    return out
