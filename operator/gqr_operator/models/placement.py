"""Where and as whom a child's pods run: one `Placement` model, which every child section
(spec.llm, spec.gateway, spec.ctrPredictor, spec.cooccurrence.milvus, spec.training) extends,
so each has the same fields, rendered by one helper (resources.defaults.apply_placement).

The nested models mirror core/v1 (Affinity, TopologySpreadConstraint, LabelSelector) with
the apiserver's own rules, so a CR the apiserver accepts renders into children it accepts.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from gqr_operator.models.common import Model, SecretRef, Toleration
from gqr_operator.models.markers import Rule, cel_string, list_map, validations

# A qualified name: an optional DNS-subdomain prefix and '/', then a name of at most 63.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

LabelKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=317,
        pattern=LABEL_KEY_PATTERN,
        description="A label key ([prefix/]name).",
    ),
]
LabelValue = Annotated[
    str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN, description="A label value.")
]


# The apiserver has no schema for map keys: a CEL rule checks them.
KEYS_RULE = Rule(
    f"self.all(k, k.matches({cel_string(LABEL_KEY_PATTERN)}))",
    "{path}: keys must be qualified names ([prefix/]name)",
)


def _check_keys(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if len(key) > 317 or not re.match(LABEL_KEY_PATTERN, key):
            raise ValueError(
                f"key {key!r} is not a qualified name (accepted: [prefix/]name, the "
                "name at most 63 characters of [-A-Za-z0-9_.], e.g. team or example.com/team)"
            )
    return value


class ImagePullSecret(SecretRef):
    """A Secret in the same namespace holding registry credentials (imagePullSecrets)."""


class LabelSelectorRequirement(Model):
    """A label requirement."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
                "{path}: values must be set with In and NotIn only",
            )
        )
    )

    key: LabelKey
    """Label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """In, NotIn, Exists or DoesNotExist."""
    values: list[LabelValue] = Field(default_factory=list, max_length=32)
    """Values (In, NotIn only)."""

    @model_validator(mode="after")
    def _values(self) -> Self:
        if (self.operator in ("In", "NotIn")) != bool(self.values):
            raise ValueError(
                f"values={self.values} with operator {self.operator} (accepted: non-empty "
                "values with In or NotIn, none with Exists or DoesNotExist)"
            )
        return self


class LabelSelector(Model):
    """A label selector."""

    match_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=16,
        json_schema_extra=validations(KEYS_RULE),
    )
    """Labels required."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=16)
    """Requirements, all of them."""

    @field_validator("match_labels")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_keys(value)


class NodeSelectorRequirement(Model):
    """A node label (or field) requirement."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "self.operator in ['Gt', 'Lt'] ? (has(self.values) && size(self.values) == 1 && "
                "self.values[0].matches('^-?[0-9]+$')) : ((self.operator in ['In', 'NotIn']) == "
                "(has(self.values) && size(self.values) > 0))",
                "{path}: values must be set with In and NotIn, one integer with Gt and Lt",
            )
        )
    )

    key: LabelKey
    """Key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    """In, NotIn, Exists, DoesNotExist, Gt or Lt."""
    values: list[LabelValue] = Field(default_factory=list, max_length=32)
    """Values (In, NotIn; one integer for Gt, Lt)."""

    @model_validator(mode="after")
    def _values(self) -> Self:
        if self.operator in ("Gt", "Lt"):
            ok = len(self.values) == 1 and re.fullmatch(r"-?[0-9]+", self.values[0]) is not None
        else:
            ok = (self.operator in ("In", "NotIn")) == bool(self.values)
        if not ok:
            raise ValueError(
                f"values={self.values} with operator {self.operator} (accepted: non-empty "
                "values with In or NotIn, none with Exists or DoesNotExist, one integer with "
                "Gt or Lt)"
            )
        return self


class NodeSelectorTerm(Model):
    """Node requirements, all of them."""

    match_expressions: list[NodeSelectorRequirement] = Field(default_factory=list, max_length=16)
    """On node labels."""
    match_fields: list[NodeSelectorRequirement] = Field(default_factory=list, max_length=4)
    """On node fields."""


class NodeSelector(Model):
    """Node selector terms, any of them."""

    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, max_length=8)
    """The terms."""


class PreferredSchedulingTerm(Model):
    """A weighted node preference."""

    weight: int = Field(ge=1, le=100)
    """Weight (1-100)."""
    preference: NodeSelectorTerm
    """The preference."""


class NodeAffinity(Model):
    """Node affinity."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    """Required."""
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = Field(
        default_factory=list, max_length=8
    )
    """Preferred."""


class PodAffinityTerm(Model):
    """Pods to be near or away from, per topology domain."""

    label_selector: LabelSelector | None = None
    """The pods' labels."""
    namespaces: list[
        Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN, description="A namespace.")]
    ] = Field(default_factory=list, max_length=16)
    """Their namespaces (none: this one)."""
    namespace_selector: LabelSelector | None = None
    """Their namespaces' labels."""
    topology_key: LabelKey
    """Node label of the domain (e.g. kubernetes.io/hostname)."""


class WeightedPodAffinityTerm(Model):
    """A weighted pod affinity term."""

    weight: int = Field(ge=1, le=100)
    """Weight (1-100)."""
    pod_affinity_term: PodAffinityTerm
    """The term."""


class PodAffinity(Model):
    """Pod (anti-)affinity."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = Field(
        default_factory=list, max_length=8
    )
    """Required."""
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list, max_length=8
    )
    """Preferred."""


class Affinity(Model):
    """Affinity, as in core/v1."""

    node_affinity: NodeAffinity | None = None
    """Node affinity."""
    pod_affinity: PodAffinity | None = None
    """Pod affinity."""
    pod_anti_affinity: PodAffinity | None = None
    """Pod anti-affinity."""


class TopologySpreadConstraint(Model):
    """How the pods spread over a topology (zones, nodes), as in core/v1."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                "!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
                "{path}: minDomains needs whenUnsatisfiable DoNotSchedule",
            )
        )
    )

    max_skew: int = Field(default=1, ge=1, le=1000)
    """Most the number of matching pods may differ between two domains."""
    topology_key: LabelKey
    """Node label whose value is the domain (e.g. topology.kubernetes.io/zone)."""
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = "DoNotSchedule"
    """DoNotSchedule (a hard constraint) or ScheduleAnyway (a preference)."""
    label_selector: LabelSelector | None = None
    """Pods counted. Left out: this child's own pods (the operator fills in their selector
    labels)."""
    min_domains: int | None = Field(default=None, ge=1, le=1000)
    """Fewest eligible domains (with DoNotSchedule only)."""
    match_label_keys: list[LabelKey] = Field(default_factory=list, max_length=8)
    """Pod label keys whose values further narrow the pods counted (e.g. pod-template-hash:
    only the pods of the same rollout)."""
    node_affinity_policy: Literal["Honor", "Ignore"] | None = None
    """Whether the pods' node affinity and nodeSelector limit the domains counted."""
    node_taints_policy: Literal["Honor", "Ignore"] | None = None
    """Whether node taints the pods do not tolerate limit the domains counted."""

    @model_validator(mode="after")
    def _min_domains(self) -> Self:
        if self.min_domains is not None and self.when_unsatisfiable != "DoNotSchedule":
            raise ValueError(
                f"minDomains={self.min_domains} with whenUnsatisfiable "
                f"{self.when_unsatisfiable} (accepted: minDomains only with DoNotSchedule)"
            )
        return self


class Placement(Model):
    """Where and as whom a child's pods run. Every child section (spec.llm, spec.gateway,
    spec.ctrPredictor, spec.cooccurrence.milvus, spec.training) has these fields."""

    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=16,
        json_schema_extra=validations(KEYS_RULE),
    )
    """Node labels the pods must match."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=16)
    """Tolerations of the pods (the LLM servers and GPU Jobs tolerate nvidia.com/gpu taints
    already)."""
    affinity: Affinity | None = None
    """Node affinity, pod affinity and pod anti-affinity of the pods."""
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(
        default_factory=list, max_length=8
    )
    """How the pods spread over zones or nodes; a constraint without labelSelector counts
    this child's own pods."""
    priority_class_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN
    )
    """PriorityClass of the pods."""
    service_account_name: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN
    )
    """ServiceAccount the pods run as (e.g. one a cloud's workload identity maps to a role);
    left out: the namespace's default. Its token is mounted only where the workload needs it
    (the operator's children do not), so this is for identity webhooks and KServe's storage
    credentials. Subject to the operator's ServiceAccount allowlist."""
    image_pull_secrets: list[ImagePullSecret] = Field(
        default_factory=list, max_length=8, json_schema_extra=list_map("name")
    )
    """Secrets of this namespace with registry credentials, added to those the operator is
    configured with (the chart's images.pullSecrets). Subject to the Secret allowlist."""
    pod_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=16,
        json_schema_extra=validations(KEYS_RULE),
    )
    """Extra labels on the pods (e.g. cost allocation, mesh injection); the operator's own
    labels take precedence."""
    pod_annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=16,
        json_schema_extra=validations(KEYS_RULE),
    )
    """Extra annotations on the pods (e.g. for a service mesh or a log collector)."""

    @field_validator("node_selector", "pod_labels", "pod_annotations")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_keys(value)
