"""Few-shot prompting: the paper's few-shot baseline, how a base or instruct model that was
never fine-tuned to the universal template serves (the bootstrap stage's day 0).

A demonstration is an annotated request rendered by the template, then its answer, then a
blank line. The packaged demonstrations of a task live next to its preset
(``tasks/<task>.demos.json``: requests with hand-written queries). The gateway puts the first
``k`` before the prompt of an arm whose routing entry says ``few_shot: k``; the bootstrap
stage's gate (``gqr sft``) measures the stable model with the same ``k``, so the stable AEC it
compares the fine-tuned candidate with is that of what users are served.

In text form (TGI, completions) the demonstrations precede the prompt; in chat form they are
earlier user/assistant turns after the system message.
"""

from __future__ import annotations

import functools
import json

from gqr_serving.prompt.loading import BUILTIN_DIR
from gqr_serving.prompt.presets import TaskPreset
from gqr_serving.prompt.request import PromptRequest
from gqr_serving.prompt.response import render_response
from gqr_serving.prompt.template import RenderedPrompt, render_prompt

DEMO_SEPARATOR = "\n\n"
"""Text between a demonstration's answer and the next prompt."""
MAX_DEMONSTRATIONS = 16
"""Most demonstrations an arm may carry (the spec's bootstrap.fewShot.demonstrations)."""


@functools.cache
def packaged(task: str) -> tuple[tuple[PromptRequest, tuple[str, ...]], ...]:
    """The packaged (request, queries) demonstrations of ``task`` (empty when it has none)."""
    path = BUILTIN_DIR / f"{task}.demos.json"
    if not path.is_file():
        return ()
    rows = json.loads(path.read_text())
    return tuple(
        (
            PromptRequest(task=task, query=r["query"], side_info=r.get("side_info") or {}),
            tuple(r["queries"]),
        )
        for r in rows
    )


def demonstrations(preset: TaskPreset, k: int) -> list[tuple[RenderedPrompt, str]]:
    """The first ``k`` packaged demonstrations of the preset's task, rendered (prompt, answer).
    Raises ValueError naming the task when it has fewer than ``k``."""
    if k <= 0:
        return []
    demos = packaged(preset.name)
    if len(demos) < k:
        raise ValueError(
            f"task {preset.name!r} has {len(demos)} packaged few-shot demonstrations; "
            f"{k} asked (accepted: 0 to {len(demos)})"
        )
    return [
        (render_prompt(preset, req), render_response(preset, list(qs))) for req, qs in demos[:k]
    ]


def prefix_text(preset: TaskPreset, k: int) -> str:
    """The text the first ``k`` demonstrations put before a plain-text prompt."""
    return "".join(p.text + answer + DEMO_SEPARATOR for p, answer in demonstrations(preset, k))


def with_demonstrations(preset: TaskPreset, prompt: RenderedPrompt, k: int) -> RenderedPrompt:
    """``prompt`` with ``k`` demonstrations before it, in text and chat form; its sections
    (what the post-filter reads) stay the request's own."""
    demos = demonstrations(preset, k)
    if not demos:
        return prompt
    text = "".join(p.text + answer + DEMO_SEPARATOR for p, answer in demos) + prompt.text
    system, *rest = prompt.messages
    turns = [
        msg
        for p, answer in demos
        for msg in (p.messages[-1], {"role": "assistant", "content": answer})
    ]
    return RenderedPrompt(text, [system, *turns, *rest], prompt.sections)
