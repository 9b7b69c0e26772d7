"""KServe custom predictor serving a CTR artifact over V1 and V2 REST (wire format: README).

    python -m gqr_training.ctr.server --model_name ctr --model_dir /mnt/models [--http_port 8080]

V1 ``POST /v1/models/ctr:predict``
    {"instances": [{"query": "...", "queries": ["...", ...], "component": "multiChoice",
                    "user_key": "<hashed key, optional>"}]}
    -> {"predictions": [{"p": [p_1, ...], "reward": r}]}
V2 ``POST /v2/models/ctr/infer``: inputs ``query`` BYTES [B], ``queries`` BYTES [B, N],
optional ``component`` BYTES [B], optional ``user_key`` BYTES [B] -> outputs ``p`` FP32
[B, N], ``reward`` FP32 [B]. A known user key multiplies its list's p by that user's
propensity (``users.py``); an unknown or absent one changes nothing.

The model is loaded before the server starts listening, so it is ready only once loaded.
Bad input is a 400 whose message names the field; lists from concurrent requests are batched.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import kserve
from kserve.errors import InvalidInput
from pydantic import ValidationError

from gqr_contracts.base import describe
from gqr_contracts.ctr import CtrPrediction, CtrRequest, CtrResponse
from gqr_contracts.reward import DEFAULT_COMPONENT, check_component, list_reward
from gqr_training.ctr.batching import MicroBatcher
from gqr_training.ctr.scorer import (
    CTRScorer,
    ScoringInputError,
    validate_list,
    validate_user_key,
)


def _component(value: Any, field: str) -> str:
    if value is None:
        return DEFAULT_COMPONENT
    try:
        return check_component(value, field)
    except ValueError as e:
        raise InvalidInput(str(e)) from None


def parse_v1(payload: Any, max_positions: int) -> tuple[CtrRequest, list[tuple[str, list[str]]]]:
    """The validated V1 request (gqr_contracts.ctr) and its (query, queries) pairs."""
    try:
        request = CtrRequest.model_validate(payload)
    except ValidationError as e:
        raise InvalidInput(describe(e, limit=1)) from None
    pairs = []
    for i, inst in enumerate(request.instances):
        try:
            pairs.append(validate_list(inst.query, inst.queries, max_positions, f"instances[{i}]."))
        except ScoringInputError as e:
            raise InvalidInput(str(e)) from None
    return request, pairs


def users_v2(request: kserve.InferRequest, batch: int) -> list[str | None] | None:
    """Optional ``user_key`` BYTES ``[B]`` input of a V2 request (empty string = unknown)."""
    inputs = {i.name: i for i in request.inputs}
    if "user_key" not in inputs:
        return None
    keys = _strings(inputs["user_key"], "inputs.user_key")
    if len(keys) != batch:
        raise InvalidInput(f"inputs.user_key: {len(keys)} values; expected {batch} (one per list)")
    out: list[str | None] = []
    for b, key in enumerate(keys):
        field = f"inputs.user_key[{b}]"
        if key is None:  # a BYTES tensor holds text; "" is the unknown user
            raise InvalidInput(f'{field}: missing; send "" for an unknown user')
        try:
            out.append(validate_user_key(key, field) or None)
        except ScoringInputError as e:
            raise InvalidInput(str(e)) from None
    return out


def _strings(inp: Any, name: str) -> list[Any]:
    data = inp.data
    if hasattr(data, "tolist"):
        data = data.tolist()
    flat: list[Any] = []
    stack = [data]
    while stack:  # flatten nested lists in row-major order
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    out = []
    for j, s in enumerate(flat):
        if isinstance(s, bytes):
            try:
                s = s.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{name}[{j}]: is not valid UTF-8 text") from None
        out.append(s)
    return out


def parse_v2(
    request: kserve.InferRequest, max_positions: int
) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Validated pairs and components of a V2 request (see the module docstring)."""
    inputs = {i.name: i for i in request.inputs}
    for name in ("query", "queries"):
        if name not in inputs:
            raise InvalidInput(f"inputs.{name}: missing (BYTES tensor)")
        if inputs[name].datatype != "BYTES":
            raise InvalidInput(f"inputs.{name}: datatype {inputs[name].datatype}; expected BYTES")
    queries_in = inputs["queries"]
    shape = list(queries_in.shape)
    if len(shape) != 2 or shape[0] < 1:
        raise InvalidInput(f"inputs.queries: shape {shape}; expected [batch, n] with batch >= 1")
    batch, n = shape
    users = _strings(inputs["query"], "inputs.query")
    flat = _strings(queries_in, "inputs.queries")
    if len(users) != batch:
        raise InvalidInput(f"inputs.query: {len(users)} values; expected {batch} (one per list)")
    if len(flat) != batch * n:
        raise InvalidInput(f"inputs.queries: {len(flat)} values do not fill shape {shape}")
    comps = ["multiChoice"] * batch
    if "component" in inputs:
        given = _strings(inputs["component"], "inputs.component")
        if len(given) != batch:
            raise InvalidInput(f"inputs.component: {len(given)} values; expected {batch}")
        comps = [_component(c, f"inputs.component[{b}]") for b, c in enumerate(given)]
    pairs = []
    for b in range(batch):
        try:
            pairs.append(
                validate_list(users[b], flat[b * n : (b + 1) * n], max_positions, f"inputs[{b}].")
            )
        except ScoringInputError as e:
            raise InvalidInput(str(e)) from None
    return pairs, comps


class CTRPredictor(kserve.Model):  # type: ignore[misc]
    """Scores lists with a CTR artifact; V1 dict and V2 InferRequest payloads."""

    def __init__(
        self,
        name: str,
        model_dir: str,
        device: str = "cpu",
        max_batch_lists: int = 256,
        batch_wait_ms: float = 2.0,
    ) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.device = device
        self.max_batch_lists = max_batch_lists
        self.batch_wait_s = batch_wait_ms / 1000.0
        self.scorer: CTRScorer | None = None
        self.batcher: MicroBatcher | None = None
        self.ready = False

    def load(self) -> bool:
        self.scorer = CTRScorer.load(self.model_dir, self.device)
        self.batcher = MicroBatcher(
            self.scorer.score_batch, self.max_batch_lists, self.batch_wait_s
        )
        self.ready = True
        return self.ready

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        if self.scorer is None or self.batcher is None:
            raise kserve.errors.ModelNotReady(self.name)
        max_pos = self.scorer.max_positions
        if isinstance(payload, kserve.InferRequest):
            pairs, comps = parse_v2(payload, max_pos)
            users = users_v2(payload, len(pairs))
            probs = self.scorer.personalise(await self.batcher.submit(pairs), users)
            return self._v2_response(payload, probs, comps)
        request, pairs = parse_v1(payload, max_pos)
        users = [inst.user_key for inst in request.instances]
        known = users if any(u is not None for u in users) else None
        probs = self.scorer.personalise(await self.batcher.submit(pairs), known)
        answer = CtrResponse(
            predictions=[
                CtrPrediction(p=p, reward=list_reward(p, inst.component))
                for p, inst in zip(probs, request.instances, strict=True)
            ]
        )
        return answer.model_dump()

    def _v2_response(
        self, request: kserve.InferRequest, probs: Sequence[list[float]], comps: Sequence[str]
    ) -> kserve.InferResponse:
        n = len(probs[0])
        rewards = [list_reward(p, c) for p, c in zip(probs, comps, strict=True)]
        outputs = [
            kserve.InferOutput("p", [len(probs), n], "FP32", [x for p in probs for x in p]),
            kserve.InferOutput("reward", [len(probs)], "FP32", rewards),
        ]
        return kserve.InferResponse(
            response_id=request.id or "", model_name=self.name, infer_outputs=outputs
        )


def make_parser() -> argparse.ArgumentParser:
    from kserve.model_server import parser as kserve_parser

    p = argparse.ArgumentParser(parents=[kserve_parser], description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dir", required=True, help="CTR artifact directory.")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max_batch_lists", type=int, default=256, help="Lists per forward pass.")
    p.add_argument("--batch_wait_ms", type=float, default=2.0, help="Batch collection window.")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch.")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = CTRPredictor(
        args.model_name, args.model_dir, args.device, args.max_batch_lists, args.batch_wait_ms
    )
    model.load()
    kserve.ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=args.enable_grpc, workers=1
    ).start([model])


if __name__ == "__main__":
    main()
