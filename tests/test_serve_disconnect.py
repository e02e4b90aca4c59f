"""A client that goes away mid-stream cancels its reply through the engine's cancel token."""

from __future__ import annotations

import time

import httpx

from lethe.serve.api import create_app
from lethe.serve.models import DirectoryVersions, ModelPool, load_model_directory
from lethe.serve.server import BackgroundServer
from test_chat_fixtures import nano, nano_dir  # noqa: F401  (fixtures)

STEP_S = 0.02


def slow_loader(path):
    """The saved model, slowed to STEP_S per forward pass so a reply outlives the test."""
    model, tokenizer = load_model_directory(path)
    forward = model.forward

    def slow_forward(*args, **kwargs):
        time.sleep(STEP_S)
        return forward(*args, **kwargs)

    model.forward = slow_forward
    return model, tokenizer


def test_disconnect_cancels_generation(nano_dir):  # noqa: F811
    pool = ModelPool(DirectoryVersions({"v1": nano_dir}), loader=slow_loader)
    engine = pool.get("v1").engine
    with BackgroundServer(create_app(pool)) as server:
        body = {
            "model": "v1",
            "messages": [{"role": "user", "content": "go"}],
            "stream": True,
            "max_tokens": 200,
            "ignore_eos": True,
        }  # ~4 s if nobody cancels it
        with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
            data = (line for line in response.iter_lines() if line.startswith("data: "))
            next(data), next(data)  # the role chunk, then the first token
            # prefill emits the first token before it enters the active batch: wait for that
            started = time.monotonic()
            while engine.scheduler.active != 1 and time.monotonic() - started < 1.0:
                time.sleep(0.005)
            assert engine.scheduler.active == 1
        closed = time.monotonic()
        while engine.scheduler.active and time.monotonic() - closed < 3:
            time.sleep(0.01)
        assert engine.scheduler.active == 0
        assert time.monotonic() - closed < 2.0
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    pool.close()
