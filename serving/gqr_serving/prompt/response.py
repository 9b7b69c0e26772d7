"""Render the exact completion text the LLM should produce: SFT targets, DPO chosen/rejected.

``parse(preset, render_response(preset, queries, aux))`` gives back exactly ``queries`` and
``aux`` with no problems; :func:`render_response` checks that and raises ``ValueError`` when
an input cannot be written so (a query holding ``<SEP>`` or a line break, an entity, a leading
list marker or quote, over the preset's limits...): a training target must be unambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gqr_serving.prompt.markers import AUX_LINE, SEP_JOIN
from gqr_serving.prompt.parser import parse
from gqr_serving.prompt.presets import TaskPreset


def render_response(
    preset: TaskPreset, queries: Sequence[str], aux_texts: Mapping[str, str] | None = None
) -> str:
    """``name: text`` lines for the auxiliary texts (preset order), then the query line."""
    aux = dict(aux_texts or {})
    if not queries:
        raise ValueError("queries must not be empty")
    if len(queries) > preset.num_queries.max:
        raise ValueError(
            f"{len(queries)} queries; preset {preset.name!r} accepts at most "
            f"{preset.num_queries.max}"
        )
    declared = [a.name for a in preset.aux_texts]
    if unknown := sorted(set(aux) - set(declared)):
        raise ValueError(
            f"aux_texts {unknown} are not declared by preset {preset.name!r}; declared: {declared}"
        )
    if missing := [a.name for a in preset.aux_texts if a.required and not aux.get(a.name)]:
        raise ValueError(f"preset {preset.name!r} requires aux_texts {missing}")
    lines = [AUX_LINE.format(name=name, text=aux[name]) for name in declared if aux.get(name)]
    lines.append(SEP_JOIN.join(queries))
    text = "\n".join(lines)
    # The parser is the single definition of the format: a target it would read differently
    # is rejected here rather than trained on.
    parsed = parse(preset, text)
    expected_aux = {k: v for k, v in aux.items() if v}
    if parsed.queries != list(queries) or parsed.aux_texts != expected_aux or parsed.problems:
        found = "; ".join(f"{p.code}: {p.message} ({p.item!r})" for p in parsed.problems)
        raise ValueError(
            f"cannot render this response unambiguously for preset {preset.name!r}: it would "
            f"read back as queries={parsed.queries!r}, aux_texts={parsed.aux_texts!r}"
            + (f" [{found}]" if found else "")
            + "; queries and aux texts must be single-line, whitespace-normalised text without "
            "<SEP>, entities, leading list markers or quotes, within the preset's limits"
        )
    return text
