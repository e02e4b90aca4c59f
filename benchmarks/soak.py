"""The soak of `benchmarks/serve.py --soak SECONDS`: many streaming clients for a bounded time.

32 clients (``--soak-clients``) stream replies back to back against one server process for
the given time while its ``LOGGING_URL`` points at a dead logging server (a socket that
listens but never answers, so every POST waits for its timeout). Measured in the same run: a
single client alone for a third of the time, then the crowd. Reports errors (goal 0), p50 /
p95 time to first token, aggregate tokens/s against the single client, the logging queue
(posted, failed, dropped) and the server's resident memory at the start and the end (goal:
flat within 10%). Writes ``benchmarks/results/serve-soak.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import httpx
import psutil


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _crowd(url: str, clients: int, seconds: float, tokens: int, request) -> dict:
    """`clients` clients streaming replies back to back until `seconds` have passed."""
    runs: list[dict] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(c: int) -> None:
            r = 0
            while time.perf_counter() < deadline:
                try:
                    runs.append(await request(client, url, tokens, seed=c * 10_000 + r))
                except Exception as error:  # noqa: BLE001  (counted: the soak's first figure)
                    errors.append(f"{type(error).__name__}: {error}")
                r += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(c) for c in range(clients)))
        wall = time.perf_counter() - started
    return {"runs": runs, "errors": errors, "tokens": sum(r["tokens"] for r in runs), "wall_s": wall}


def soak(args, build_version, start_server, request) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    dead.bind(("127.0.0.1", 0))
    dead.listen(1)  # never accepted: connections hang until the logger's timeout
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/log"
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "bench"
        build_version(args.preset, directory)
        process, url = start_server(
            directory, args.threads, env={"LOGGING_URL": dead_url}, max_batch_size=max(16, args.soak_clients)
        )
        server = psutil.Process(process.pid)
        health = url.replace("/v1/chat/completions", "/health")
        try:
            asyncio.run(_crowd(url, 2, 2.0, args.tokens, request))  # warm-up
            rss_start = server.memory_info().rss
            single = asyncio.run(_crowd(url, 1, args.soak / 3, args.tokens, request))
            crowd = asyncio.run(_crowd(url, args.soak_clients, args.soak, args.tokens, request))
            rss_end = server.memory_info().rss
            logging = httpx.get(health, timeout=10).json()["logging"]
        finally:
            process.terminate()
            process.wait(10)
            dead.close()
    ttft = [r["ttft_s"] for r in crowd["runs"]]
    single_rate = single["tokens"] / single["wall_s"]
    crowd_rate = crowd["tokens"] / crowd["wall_s"]
    result = {
        "benchmark": "serve-soak",
        "config": {
            "preset": args.preset,
            "tokens": args.tokens,
            "threads": args.threads,
            "clients": args.soak_clients,
            "seconds": args.soak,
        },
        "errors": len(crowd["errors"]) + len(single["errors"]),
        "error_samples": (single["errors"] + crowd["errors"])[:5],
        "replies": len(crowd["runs"]),
        "ttft_p50_s": _percentile(ttft, 0.5),
        "ttft_p95_s": _percentile(ttft, 0.95),
        "single_client_tok_s": single_rate,
        "aggregate_tok_s": crowd_rate,
        "speedup_vs_one_client": crowd_rate / single_rate,
        "rss_mb": {"start": rss_start / 2**20, "end": rss_end / 2**20},
        "rss_growth": rss_end / rss_start - 1,
        "logging": logging,
        "load_average": os.getloadavg()[0],
        "seconds": time.perf_counter() - began,
    }
    print(
        f"\nsoak: {args.soak_clients} streaming clients for {args.soak:.0f} s, preset {args.preset}, "
        f"{args.tokens} tokens/reply, torch threads {args.threads}, dead LOGGING_URL"
    )
    print(f"errors {result['errors']}, replies {result['replies']}")
    print(f"TTFT p50 {result['ttft_p50_s'] * 1000:.0f} ms, p95 {result['ttft_p95_s'] * 1000:.0f} ms")
    print(
        f"aggregate {crowd_rate:.0f} tok/s vs one client {single_rate:.0f} tok/s: "
        f"{result['speedup_vs_one_client']:.2f}x"
    )
    print(
        f"server RSS {result['rss_mb']['start']:.0f} -> {result['rss_mb']['end']:.0f} MB "
        f"({result['rss_growth']:+.1%}); logging {logging}"
    )
    out = args.out.with_name("serve-soak.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
