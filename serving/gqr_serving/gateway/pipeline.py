"""One recommendation: COR -> prompt -> LLM -> parse -> post-filter -> rerank -> answer.

Degrades instead of failing: no LLM answer -> COR queries alone (``fallback``); COR down ->
the LLM without co-occurring queries; both -> :class:`Unavailable` (the API's 503).

The output filter (``OutputGuard``) runs in the post-filter on everything served: the LLM's
queries and aux texts, the COR queries that top up a short list, and the COR fallback.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from prometheus_client import Histogram

from gqr_serving.backends import BackendError, GenerationParams, PromptInput
from gqr_serving.gateway.cor_budget import BudgetedCOR, CORAnswer
from gqr_serving.gateway.ctr import CTRClient, CTRError, RerankMode
from gqr_serving.gateway.filters import post_filter, secret_of_sections
from gqr_serving.gateway.metrics import GatewayMetrics
from gqr_serving.gateway.output_guard import OutputGuard
from gqr_serving.gateway.router import Arm
from gqr_serving.gateway.schemas import RecommendRequest
from gqr_serving.prompt import (
    ParseResult,
    PromptRequest,
    RenderedPrompt,
    SideInfo,
    TaskPreset,
    parse,
    render_prompt,
)
from gqr_serving.prompt.fewshot import packaged, with_demonstrations
from gqr_serving.safety import REASONS, OutputFilter

_FIELDS = {"history": "history", "ai_response": "ai_answer", "prefix": "prefix"}


class Unavailable(RuntimeError):
    """Neither the LLM nor COR produced a usable query."""


class InputError(ValueError):
    """The request cannot be served as asked; ``field`` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Outcome:
    queries: list[str]
    aux_texts: dict[str, str]
    side_info: SideInfo
    fallback: bool = False
    fallback_reason: str | None = None
    reranked: bool = False
    problems: list[str] = field(default_factory=list)


def seed_for(arm: Arm, user_hash: str | None) -> int | None:
    d = arm.decoding
    if d.seed_policy == "fixed":
        return d.seed
    if d.seed_policy == "per_user" and user_hash is not None:
        digest = hashlib.blake2b(f"{arm.name}:{user_hash}".encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") & 0x7FFFFFFF
    return secrets.randbits(31)


def check_side_info(preset: TaskPreset, req: RecommendRequest) -> None:
    """422 up front for side information the task requires but the request lacks."""
    for spec in preset.sections:
        api_field = _FIELDS.get(spec.name)
        if spec.required and api_field is not None and not getattr(req, api_field):
            raise InputError(api_field, f"task {preset.name!r} requires '{api_field}'")


class Pipeline:
    """The request path; stateless apart from its clients."""

    def __init__(
        self,
        cor: BudgetedCOR,
        metrics: GatewayMetrics,
        *,
        ctr: CTRClient | None = None,
        rerank: bool = True,
        ctr_timeout_s: float = 0.5,
        rerank_mode: RerankMode = "pointwise",
        guard: OutputGuard | None = None,
    ) -> None:
        self.cor, self.metrics, self.ctr = cor, metrics, ctr
        self.rerank_default, self.ctr_timeout_s = rerank, ctr_timeout_s
        self.rerank_mode = rerank_mode
        self.guard = guard

    @property
    def safety(self) -> OutputFilter | None:
        """The output filter in force now (the guard swaps it on a blocklist reload)."""
        return self.guard.filter if self.guard is not None else None

    async def run(
        self,
        req: RecommendRequest,
        preset: TaskPreset,
        n: int,
        arm: Arm,
        user_hash: str | None,
        deadline: float,
    ) -> Outcome:
        """One request through every stage (each timed in ``gqr_gateway_stage_seconds``)."""
        clock = _StageClock(self.metrics.stage)
        cor = await self._retrieve(req.query, deadline - clock.last)
        clock.lap("cor")

        rerank = self.ctr is not None and (
            arm.config.rerank if arm.config.rerank is not None else self.rerank_default
        )
        n_gen = min(2 * n, preset.num_queries.max) if rerank else n
        side = SideInfo(
            history=list(req.history),
            ai_response=req.ai_answer,
            cooccurring=cor.queries,
            prefix=req.prefix,
        )
        gen_request = PromptRequest(
            task=preset.name, query=req.query, side_info=side, num_queries=n_gen
        )
        try:
            prompt = render_prompt(preset, gen_request)
        except ValueError as exc:
            raise InputError("query", str(exc)) from None
        # a base model (bootstrap day 0) is prompted with demonstrations, as many as the task
        # carries at most; the sections the post-filter reads stay the request's own
        shots = min(arm.config.few_shot, len(packaged(preset.name)))
        prompt = with_demonstrations(preset, prompt, shots)
        clock.lap("prompt")

        out = Outcome([], {}, side)
        llm_budget = deadline - (self.ctr_timeout_s if rerank else 0.0) - 0.02
        completion = await self._generate(arm, prompt, user_hash, llm_budget, out)
        clock.lap("llm")

        safety = self.safety
        if completion is not None:
            self._take_completion(out, preset, gen_request, prompt, completion, n_gen, safety)
        for code in out.problems:
            self.metrics.problems.labels(code).inc()
        parsed_at = clock.lap("parse")

        if not out.queries:  # COR alone, still over-generated for the rerank
            self._fallback(out, preset, req, side, n_gen, arm, cor.status, safety)
        if rerank and self.ctr is not None and len(out.queries) > n:
            ctr_deadline = min(deadline, parsed_at + self.ctr_timeout_s)
            await self._rerank(self.ctr, out, req.query, preset, n, ctr_deadline)
            clock.lap("rerank")
        out.queries = out.queries[:n]
        return out

    async def _retrieve(self, query: str, timeout_s: float) -> CORAnswer:
        """COR within the request's budget, counted by status and path."""
        cor = await self.cor.retrieve(query, timeout_s=timeout_s)
        self.metrics.cor.labels(cor.status).inc()
        if cor.path != "off":
            self.metrics.cor_path.labels(cor.path).inc()
        return cor

    async def _generate(
        self, arm: Arm, prompt: RenderedPrompt, user_hash: str | None, budget: float, out: Outcome
    ) -> str | None:
        """The arm's completion, or None with ``out.fallback_reason`` saying why."""
        d = arm.decoding
        params = GenerationParams(
            max_new_tokens=d.max_new_tokens or 64,
            temperature=d.temperature if d.temperature is not None else 0.7,
            top_p=d.top_p or 1.0,
            seed=seed_for(arm, user_hash),
            stop=tuple(d.stop or ()),
            adapter_id=arm.config.backend.adapter_id,
        )
        try:
            return await arm.backend.generate(
                PromptInput(prompt.text, tuple(prompt.messages)), params, deadline=budget
            )
        except BackendError as exc:
            self.metrics.backend_errors.labels(arm.name, exc.reason).inc()
            out.fallback_reason = f"llm_{exc.reason}"
            return None
        finally:
            self.metrics.breaker_open.labels(arm.name).set(
                1 if arm.backend.breaker.state == "open" else 0
            )

    @staticmethod
    def _take_completion(
        out: Outcome,
        preset: TaskPreset,
        gen_request: PromptRequest,
        prompt: RenderedPrompt,
        completion: str,
        n_gen: int,
        safety: OutputFilter | None = None,
    ) -> None:
        """Parse and post-filter the completion into ``out``; short lists are topped up from
        COR (the LLM's queries first). Problem codes: the completion's, and the output
        filter's reasons for the COR queries it kept out of the top-up."""
        secret = secret_of_sections(prompt.sections)
        parsed = parse(preset, completion)
        queries, aux, codes = post_filter(preset, gen_request, parsed, secret, safety)
        out.problems = codes
        out.aux_texts = aux
        if not queries:
            out.fallback_reason = "llm_empty"
            return
        out.queries = queries
        cooccurring = gen_request.side_info.cooccurring
        if len(queries) < n_gen and cooccurring:
            extra = [*queries, *cooccurring]
            out.queries, _, more = post_filter(
                preset, gen_request, ParseResult(queries=extra), secret, safety
            )
            out.problems += [c for c in more if c in REASONS]

    async def _rerank(
        self,
        ctr: CTRClient,
        out: Outcome,
        query: str,
        preset: TaskPreset,
        n: int,
        deadline: float,
    ) -> None:
        """The N best by the CTR predictor; on its failure the order stays (counted)."""
        try:
            out.queries = await ctr.rerank(
                query, out.queries, n, preset.component, deadline, self.rerank_mode
            )
            out.reranked = True
        except CTRError:
            self.metrics.ctr_errors.inc()

    def _fallback(
        self,
        out: Outcome,
        preset: TaskPreset,
        req: RecommendRequest,
        side: SideInfo,
        n: int,
        arm: Arm,
        cor_status: str,
        safety: OutputFilter | None = None,
    ) -> None:
        """COR's queries alone (the output filter's refusals counted by reason), or
        :class:`Unavailable`."""
        reason = out.fallback_reason or "llm_empty"
        request = PromptRequest(task=preset.name, query=req.query, side_info=side, num_queries=n)
        candidates = list(side.cooccurring)
        if preset.constraints.must_come_from_history:  # hint: the session is the only source
            candidates += list(reversed(side.history))
        queries, _, codes = post_filter(
            preset, request, ParseResult(queries=candidates), safety=safety
        )
        for code in codes:
            if code in REASONS:
                self.metrics.problems.labels(code).inc()
        if not queries:
            self.metrics.unavailable.inc()
            raise Unavailable(
                f"the LLM gave no usable answer ({reason}) and COR had none ({cor_status})"
            )
        self.metrics.fallbacks.labels(arm.name, reason).inc()
        out.queries, out.aux_texts = queries[:n], {}
        out.fallback, out.fallback_reason = True, reason


class _StageClock:
    """Observes each pipeline stage's time since the previous stage ended."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.last = time.monotonic()

    def lap(self, stage: str) -> float:
        now = time.monotonic()
        self.histogram.labels(stage).observe(now - self.last)
        self.last = now
        return now
