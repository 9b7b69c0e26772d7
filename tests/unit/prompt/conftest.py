"""Fixtures for the prompt tests: the built-in presets and a tiny tokenizer built offline."""

from __future__ import annotations

from typing import Any

import pytest

from gqr_serving.prompt import TaskPreset, load_preset

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Like Gemma's template: no system role.
NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def _preset_fixture(task: str) -> Any:
    """A session fixture named ``task``: the built-in preset of that task."""

    def preset() -> TaskPreset:
        return load_preset(task)

    return pytest.fixture(scope="session", name=task)(preset)


suggestion = _preset_fixture("suggestion")
clarification = _preset_fixture("clarification")
hint = _preset_fixture("hint")
completion = _preset_fixture("completion")


def make_tokenizer(chat_template: str | None) -> Any:
    """A WordLevel tokenizer trained on a few strings, wrapped as a transformers tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "<|im_start|>", "<|im_end|>"])
    raw.train_from_iterator(["how to make tea", "green tea <SEP> black tea"], trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw, unk_token="[UNK]", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = chat_template
    return tokenizer
