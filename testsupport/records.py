"""Log records as the gateway writes them, for tests that build a click log of their own."""

from __future__ import annotations

from datetime import datetime

from gqr_serving.records import ImpressionRecord


def impression(
    impression_id: str,
    ts: datetime,
    query: str,
    queries: list[str],
    *,
    session_id: str,
    user_key: str,
    model_version: str = "v1",
    deployment: str = "local",
) -> ImpressionRecord:
    """``queries`` shown for ``query`` by the stable arm of the local deployment (the
    suggestion task), as the gateway logs it."""
    return ImpressionRecord(
        impression_id=impression_id,
        ts=ts,
        deployment=deployment,
        task="suggestion",
        arm="stable",
        model_version=model_version,
        session_id=session_id,
        user_key=user_key,
        query=query,
        queries=queries,
    )
