"""A tiny stand-in for the `gqr <step>` console script under torchrun, for the failure case of
the multi-node apiserver test (`test_operator_multinode.py`), which puts it first on the workers'
PATH as `gqr`: every pod of a JobSet gets the same spec, so the real steps cannot be made to fail
on one rank only (the test's success case runs the real `gqr ctr-train`).

`gqr <step> [flags]`: with WORLD_SIZE > 1 it joins torchrun's process group (gloo, the
rendezvous torchrun took from the engine's PET_* variables) and all-reduces its rank + 1, so a
result proves every rank met; rank 0 then writes the step's job_result (with `world_size` and
`rank_sum` among its metrics) to `--result-file`. With GQR_STUB_FAIL_RANK=<rank> that rank
writes a failed job_result instead and exits 3 after the all-reduce.
"""

from __future__ import annotations

import json
import os
import sys


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1] if name in args else ""


def main(argv: list[str]) -> int:
    step, args = argv[0], argv[1:]
    result_file, version = _flag(args, "--result-file"), _flag(args, "--version")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    metrics: dict[str, float] = {"world_size": float(world)}
    if world > 1:
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo")
        total = torch.tensor([float(rank + 1)])
        dist.all_reduce(total)
        metrics["rank_sum"] = float(total.item())
        dist.destroy_process_group()
    doc = {"kind": "job_result", "job": step, "status": "succeeded", "version": f"{step}-{version}"}
    if os.environ.get("GQR_STUB_FAIL_RANK") == str(rank):
        said = f"boom: rank {rank} of {world} could not read its shard"
        print(said, file=sys.stderr)
        with open(result_file, "w") as fh:
            json.dump({**doc, "status": "failed", "message": said}, fh)
        return 3
    if step == "dpo-iterate":
        metrics.update(aec=0.21, aec_stable=0.11)
    if rank == 0:
        with open(result_file, "w") as fh:
            json.dump({**doc, "artifact_uri": f"s3://artifacts/x/{step}/{version}",
                       "metrics": metrics}, fh)  # fmt: skip
    print(f"{step}: rank {rank} of {world} done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
