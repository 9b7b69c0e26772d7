"""What a GQRDeployment may use of its namespace: the operator's allowlist of Secrets and
ServiceAccounts.

Whoever may create a GQRDeployment in a namespace can have the operator mount any Secret of
that namespace into pods it runs (the spec's ``secretRef`` fields) and run pods as any of its
ServiceAccounts (``serviceAccountName``), using the operator's rights rather than their own.
Where that is too much, the operator's environment narrows it (the chart's ``allowlist``
values): ``GQR_ALLOWED_SECRETS`` and ``GQR_ALLOWED_SERVICE_ACCOUNTS``, comma-separated
shell-style patterns (``gqr-*``). Unset, everything is allowed; set to an empty value, nothing.
A spec naming anything else is refused before any child is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pydantic import BaseModel

from gqr_operator.models.common import SecretKeyRef, SecretRef

SECRETS_ENV = "GQR_ALLOWED_SECRETS"
SERVICE_ACCOUNTS_ENV = "GQR_ALLOWED_SERVICE_ACCOUNTS"


@dataclass(frozen=True)
class Allowlist:
    """Patterns of allowed Secret and ServiceAccount names; None: anything goes."""

    secrets: tuple[str, ...] | None = None
    service_accounts: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Allowlist:
        env = os.environ if env is None else env

        def patterns(name: str) -> tuple[str, ...] | None:
            raw = env.get(name)
            return None if raw is None else tuple(p.strip() for p in raw.split(",") if p.strip())

        return cls(patterns(SECRETS_ENV), patterns(SERVICE_ACCOUNTS_ENV))

    def violations(self, spec: BaseModel) -> list[str]:
        """One message per reference the allowlist refuses, naming the field and the value."""
        out = []
        for path, kind, value in references(spec):
            allowed = self.secrets if kind == "Secret" else self.service_accounts
            if allowed is not None and not any(fnmatchcase(value, p) for p in allowed):
                env = SECRETS_ENV if kind == "Secret" else SERVICE_ACCOUNTS_ENV
                shown = ", ".join(allowed) or "none"
                out.append(f"{path}={value!r}: {kind} not allowed by the operator ({env}: {shown})")
        return out


def references(model: BaseModel, path: str = "spec") -> Iterator[tuple[str, str, str]]:
    """(field path, 'Secret' or 'ServiceAccount', name) of every reference in ``model``."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        where = f"{path}.{info.alias or name}"
        if isinstance(value, SecretRef | SecretKeyRef):
            yield f"{where}.name", "Secret", value.name
        elif name == "service_account_name" and isinstance(value, str):
            yield where, "ServiceAccount", value
        elif isinstance(value, BaseModel):
            yield from references(value, where)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, SecretRef | SecretKeyRef):  # e.g. imagePullSecrets
                    yield f"{where}[{i}].name", "Secret", item.name
                elif isinstance(item, BaseModel):
                    yield from references(item, f"{where}[{i}]")
