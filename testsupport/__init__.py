"""What tests and benchmarks share: stand-ins for the servers around the gateway, the artifacts
its real components load, and the helpers that start and measure them.

- ``tgi_standin``: THE TGI stand-in for a real model (``POST /generate``, ``POST /``,
  ``/health``, ``/info``, LoRA adapters, TGI's validation) served by the gateway's own
  ``LocalBackend``; a subprocess (``start_tgi_standin``), so a test can kill it.
- ``http_stub``: a scripted HTTP/1.1 server on raw asyncio for exact replies and failures (an
  LLM or the CTR predictor answering an error, a malformed body, a hang-up, nothing), and
  the instant TGI of ``benchmarks/bench_gateway.py``.
- ``http_function``: a threaded HTTP server answering each request with a function of it
  (``FunctionServer``), for a stand-in whose answer depends on the question.
- ``artifacts``: a random-init GPT-2 LM folder, a CTR predictor artifact, a published COR
  artifact, ``cor-build`` run on a session TSV.
- ``records``: log records as the gateway writes them (``impression``), for tests that write
  a click log of their own.
- ``procs``: subprocesses on free loopback ports: start, wait until up (``http_ok``), stop
  (``stop_process_group``) or kill; the CTR predictor's KServe server (``start_ctr_server``);
  the end-to-end harness uses them too.
- ``percentile``: ``pct``, the nearest-rank percentile the benchmarks print.
- ``toyworld``: the alignment tests' toy recommendation world (requests, an annotator, a known
  list scorer, SFT rows, tiny LMs), also what ``bench_align`` and ``bench_dpo_gpu`` run on.

Importing it (it is not part of the installed distribution, and no runtime code imports it):

- pytest puts the repository root on ``sys.path`` (``tests/__init__.py`` makes ``tests`` a
  package, whose parent is inserted), so a test writes ``from testsupport.procs import ...``.
- Benchmarks run as modules from the repository root: ``.venv/bin/python -m
  benchmarks.bench_gateway ...`` (``-m`` puts the current folder on ``sys.path``).
  ``python benchmarks/bench_gateway.py`` puts only ``benchmarks/`` there: without the
  repository root on ``PYTHONPATH`` the benchmark exits naming the command to use.
- Modules that also run as scripts (``tgi_standin.py``, ``http_stub.py``) import nothing from
  this package, so ``python testsupport/tgi_standin.py`` works from anywhere.
"""
