"""Spec section of the bootstrap stage: starting from a base or instruct model.

While no fine-tuned model has been promoted (the stable version is still the spec's
`llm.model`), the stable arm is served with few-shot prompting and every pipeline run is a
bootstrap run: teacher annotations of logged requests, an SFT Job, the AEC gate against the
stable as served, then the usual canary. After the first promotion runs are the regular cycle.
"""

from __future__ import annotations

from pydantic import Field

from gqr_contracts.routing import MAX_FEW_SHOT, PACKAGED_DEMONSTRATIONS
from gqr_operator.models.common import (
    MAX_NODES,
    SECRET_KEY_PATTERN,
    SECRET_NAME_PATTERN,
    Model,
)

DEFAULT_DEMONSTRATIONS = 3


def demonstrations_rule() -> str:
    """CEL: spec.bootstrap.fewShot.demonstrations, when set, is at most what spec.task.type
    carries."""
    d = "self.bootstrap.fewShot.demonstrations"
    per_task = " || ".join(
        f"(self.task.type == '{task}' && {d} <= {n})" for task, n in PACKAGED_DEMONSTRATIONS.items()
    )
    return (
        f"!has(self.bootstrap) || !has(self.bootstrap.fewShot) "
        f"|| !has(self.bootstrap.fewShot.demonstrations) || {d} == 0 || {per_task}"
    )


class ApiKeyRef(Model):
    """One key of a Secret in the same namespace holding an API key."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    """Name of a Secret in this namespace."""
    key: str = Field(default="apiKey", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)
    """Key in the Secret."""


class Teacher(Model):
    """The teacher LLM whose answers the first fine-tuning learns from: any server with the
    OpenAI chat completions API (vLLM, TGI, SGLang, a hosted API)."""

    url: str = Field(max_length=512, pattern=r"^https?://\S+$")
    """Base URL of the server, with or without /v1 (e.g. http://teacher.ml:8000 or
    https://api.example.com/v1); the annotate Job posts to <url>/v1/chat/completions."""
    model: str = Field(min_length=1, max_length=256)
    """Model name sent with every request (the server's name for the teacher)."""
    api_key_secret_ref: ApiKeyRef | None = None
    """Secret key holding the API key, sent as a Bearer token. The key reaches only the
    annotate Job, as an environment variable from the Secret: never in args, logs or status.
    A missing or empty key fails the annotate Job, naming the Secret."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """The teacher's sampling temperature."""


class BootstrapSft(Model):
    """Supervised fine-tuning of the base model on the teacher's annotations (TRL)."""

    epochs: float = Field(default=3.0, gt=0.0, le=50.0)
    """Passes over the annotations."""
    learning_rate: float | None = Field(default=None, gt=0.0, le=1.0)
    """Peak learning rate (cosine decay). Left out: 2e-4 with LoRA, 1e-3 without (use about
    2e-5 for all weights of a real model)."""
    batch_size: int = Field(default=32, ge=1, le=1024)
    """Examples per step."""
    lora: bool = True
    """Train LoRA adapters instead of all weights; they are merged at the end, so the
    candidate is served as full weights."""
    lora_rank: int = Field(default=16, ge=1, le=256)
    """LoRA rank."""
    max_length: int = Field(default=512, ge=32, le=32768)
    """Longest prompt + answer, in tokens; longer examples are truncated."""
    nodes: int = Field(default=1, ge=1, le=MAX_NODES)
    """Machines (pods) the sft step runs on. 1: one Job pod. More: one JobSet
    (jobset.x-k8s.io/v1alpha2, which must be installed in the cluster) of that many pods, each
    with spec.training.resources, running the step under torchrun with JobSet's rendezvous
    (docs/operations.md, Multi-node stages)."""


class FewShot(Model):
    """Few-shot prompting of the base model while it is the stable one (day 0)."""

    demonstrations: int | None = Field(default=None, ge=0, le=MAX_FEW_SHOT)
    """Packaged annotated examples the gateway puts before each prompt of the stable arm while
    no fine-tuned model has been promoted; the bootstrap gate measures the stable model with
    the same ones. 0 serves the prompt alone (zero-shot). The task must carry that many
    (suggestion: 5; the other built-in tasks carry none yet). Left out: 3 where the task
    carries demonstrations, else 0."""

    def count(self, task: str) -> int:
        """The demonstrations served for `task`."""
        if self.demonstrations is not None:
            return self.demonstrations
        return min(DEFAULT_DEMONSTRATIONS, PACKAGED_DEMONSTRATIONS.get(task, 0))


class Bootstrap(Model):
    """Start from a base or instruct model (spec.llm.model not fine-tuned to the template)."""

    teacher: Teacher
    """The teacher LLM that annotates logged requests."""
    annotations: int = Field(default=2000, ge=16, le=100000)
    """Distinct logged requests (of the spec.training.ctr.windowDays window; the fixed test
    tenth left out for the gate) the teacher annotates per bootstrap run."""
    augment: int = Field(default=1, ge=0, le=8)
    """Extra copies of each usable annotation with its queries shuffled."""
    sft: BootstrapSft = Field(default_factory=BootstrapSft)
    """The SFT Job's settings."""
    few_shot: FewShot = Field(default_factory=FewShot)
    """How the base model serves until the first fine-tuned model is promoted."""
