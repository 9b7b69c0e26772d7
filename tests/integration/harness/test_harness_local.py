"""The e2e harness's local stand-ins without the control plane: the TGI stand-in answers the
gateway's real TGIBackend (both transports, an adapter, validation errors) from a real tiny
model, and the cluster-DNS shim resolves Service names in a subprocess (aiohttp, httpx,
socket) and in this process, re-reading the hosts table when it changes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import HostsFile, LoopbackAllocator, resolver_installed, service_names
from tests.kube_helpers import wait_for
from testsupport.http_function import FunctionServer, Reply
from testsupport.procs import free_port, http_ok, stop_process_group
from testsupport.tgi_standin import start_tgi_standin

from gqr_serving.backends import BackendError, GenerationParams, PromptInput
from gqr_serving.backends.tgi import TGIBackend


@pytest.fixture
def hello_server() -> Iterator[tuple[str, int]]:
    """A plain HTTP server on its own loopback address answering "hello"."""
    address = LoopbackAllocator().allocate(0)
    with FunctionServer(lambda *_: Reply(body=b"hello"), address) as server:
        yield address, server.port


CLIENT_SCRIPT = """
import asyncio, json, socket, sys
import aiohttp, httpx, uvloop

async def main(urls):
    out = {"ip": socket.gethostbyname(urls[0].split("//")[1].split(":")[0])}
    async with aiohttp.ClientSession() as s:
        out["aiohttp"] = [await (await s.get(u)).text() for u in urls]
    async with httpx.AsyncClient(trust_env=False) as c:
        out["httpx_async"] = [(await c.get(u)).text for u in urls]
    with httpx.Client(trust_env=False) as c:
        out["httpx"] = [c.get(u).text for u in urls]
    return out

out = asyncio.run(main(sys.argv[1:]))
# uvicorn runs the gateway on uvloop, whose resolver is libuv's own.
with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
    out["uvloop"] = runner.run(main(sys.argv[1:]))
print(json.dumps(out))
"""


def test_dns_shim_resolves_service_names_in_a_subprocess(
    hello_server: tuple[str, int], tmp_path: Path
) -> None:
    address, port = hello_server
    hosts = HostsFile(tmp_path / "hosts.json")
    hosts.set(service_names("svc-a", "ns1"), address)
    urls = [f"http://svc-a.ns1.svc.cluster.local:{port}/", f"http://svc-a.ns1:{port}/"]
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, *urls],
        env=hosts.env(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ip"] == address
    for result in (out, out["uvloop"]):
        for client in ("aiohttp", "httpx_async", "httpx"):
            assert result[client] == ["hello", "hello"], client
    # Unlisted names still resolve normally; without the env nothing is patched.
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket; socket.gethostbyname('svc-a.ns1.svc.cluster.local')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plain.returncode != 0 and "gaierror" in plain.stderr


def test_dns_shim_rereads_the_table_in_process(tmp_path: Path) -> None:
    hosts = HostsFile(tmp_path / "hosts.json")
    name = "llm.ns2.svc.cluster.local"
    hosts.set(name, "127.3.0.7")
    with resolver_installed(hosts):
        assert socket.getaddrinfo(name, 80)[0][4][0] == "127.3.0.7"
        hosts.set(name, "127.3.0.8")
        assert socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)[0][4] == ("127.3.0.8", 80)
        assert socket.getaddrinfo("localhost", 80)[0][4][0] in ("127.0.0.1", "::1")
        hosts.remove(name)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo(name, 80)
    hosts.set(name, "127.3.0.9")
    with pytest.raises(socket.gaierror):  # uninstalled: the real resolver again
        socket.getaddrinfo(name, 80)


def _lora_adapter(model_dir: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)  # GPT-2 Conv1D
    get_peft_model(model, config).save_pretrained(str(out))
    return out


async def _calls(url: str) -> dict[str, Any]:
    greedy = GenerationParams(max_new_tokens=8, temperature=0.0)
    prompt = PromptInput("what is green tea")
    client, http = TGIBackend(url, transport="client"), TGIBackend(url, transport="http")
    out: dict[str, Any] = {}
    try:
        out["client"] = await client.generate(prompt, greedy)
        out["http"] = await http.generate(prompt, greedy)
        for adapter in ("full", "lora"):
            out[adapter] = await http.generate(
                prompt, GenerationParams(max_new_tokens=8, temperature=0.0, adapter_id=adapter)
            )
        sampled = GenerationParams(max_new_tokens=8, temperature=0.7, top_p=0.9, seed=3)
        out["sampled"] = [await client.generate(prompt, sampled) for _ in range(2)]
        try:
            await http.generate(prompt, GenerationParams(adapter_id="nope"))
        except BackendError as exc:
            out["unknown_adapter"] = (exc.reason, str(exc))
    finally:
        await client.aclose()
        await http.aclose()
    return out


def test_tgi_standin_answers_the_gateway_tgi_backend(
    tiny_lm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    # The client transport really uses huggingface_hub's inference client (offline mode, which
    # other tests' conftests may set, sends every call over plain HTTP instead).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    address = LoopbackAllocator().allocate(0)
    port = free_port(address)
    log = tmp_path / "tgi.log"
    # Adapter "full": a full-weights folder, served as is; "lora": a PEFT adapter folder (fresh,
    # so its update is zero), merged into the base weights by the stand-in.
    adapters = [("full", tiny_lm), ("lora", _lora_adapter(tiny_lm, tmp_path / "lora"))]
    proc = start_tgi_standin(tiny_lm, address, port, log, adapters=adapters)
    try:
        wait_for(
            lambda: proc.poll() is not None or http_ok(address, port),
            "the TGI stand-in up",
            timeout=180,
        )
        assert proc.poll() is None, log.read_text()
        hosts = HostsFile(tmp_path / "hosts.json")
        hosts.set(service_names("gqr-llm-initial", "ns3"), address)
        with resolver_installed(hosts):  # the in-cluster URL, as in the routing ConfigMap
            out = asyncio.run(_calls(f"http://gqr-llm-initial.ns3.svc.cluster.local:{port}"))
    finally:
        stop_process_group(proc)
    assert isinstance(out["client"], str) and out["client"].strip(), out
    assert out["client"] == out["http"] == out["full"] == out["lora"]  # greedy, same weights
    assert out["sampled"][0] == out["sampled"][1]  # seeded sampling is repeatable
    reason, message = out["unknown_adapter"]
    assert reason == "status" and "422" in message and "not loaded" in message
