"""The universal prompt framework (the paper's Template 1) and its total parser.

One template renders every query recommendation task from a data-defined ``TaskPreset``; the
LLM answers ``name: text`` auxiliary lines then ``q1 <SEP> q2 <SEP> ... qN``; ``parse`` reads
any output back (never raising), and ``enforce`` applies the preset's constraints::

    preset = load_preset("suggestion")
    request = PromptRequest(task="suggestion", query="...", side_info=SideInfo(...))
    prompt = render(preset, request)                       # or render_chat(..., tokenizer)
    result = enforce(preset, request, parse(preset, completion))
    result.queries, result.aux_texts, result.problems
"""

from gqr_serving.prompt.constraints import enforce, is_near_copy
from gqr_serving.prompt.escaping import escape, unescape
from gqr_serving.prompt.loading import PresetError, list_presets, load_preset, load_preset_file
from gqr_serving.prompt.markers import SEP
from gqr_serving.prompt.parser import parse
from gqr_serving.prompt.presets import TaskPreset
from gqr_serving.prompt.request import PromptRequest
from gqr_serving.prompt.response import render_response
from gqr_serving.prompt.result import ParseResult, Problem
from gqr_serving.prompt.template import (
    RenderedPrompt,
    render,
    render_chat,
    render_messages,
    render_prompt,
    split_sections,
)
from gqr_serving.records import SideInfo

__all__ = [
    "SEP",
    "ParseResult",
    "PresetError",
    "Problem",
    "PromptRequest",
    "RenderedPrompt",
    "SideInfo",
    "TaskPreset",
    "enforce",
    "escape",
    "is_near_copy",
    "list_presets",
    "load_preset",
    "load_preset_file",
    "parse",
    "render",
    "render_chat",
    "render_messages",
    "render_prompt",
    "render_response",
    "split_sections",
    "unescape",
]
