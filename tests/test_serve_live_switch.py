"""A running server follows `latest` when another process publishes a forget request; replies
already streaming finish on the old weights; the tainted version is refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

from lethe.serve.api import create_app
from lethe.serve.models import ModelPool, load_model_directory
from lethe.serve.server import BackgroundServer

USER = [{"role": "user", "content": "Who is it?"}]


def gated_loader(gate: threading.Event):
    """Loads versions; the first one loaded decodes only while `gate` is set."""
    loads = []

    def load(path):
        model, tokenizer = load_model_directory(path)
        if not loads:
            forward = model.forward

            def gated_forward(*args, **kwargs):
                assert gate.wait(120), "the gate never opened"
                return forward(*args, **kwargs)

            model.forward = gated_forward
        loads.append(path)
        return model, tokenizer

    return load


@pytest.mark.slow
def test_latest_moves_after_a_cli_forget_and_the_tainted_version_is_refused(trained_workspace):
    ws, world, _ = trained_workspace
    entity = next(e for e in world.entities if any(d["group"] == "train" for d in world.documents_of(e.id)))
    gate = threading.Event()
    gate.set()
    pool = ModelPool(ws.ledger, base_dir=ws.home, loader=gated_loader(gate)).watch(0.5)
    with BackgroundServer(create_app(pool)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
        old = client.chat.completions.create(model="latest", messages=USER, max_tokens=2).model
        gate.clear()  # the old version's reply now waits mid-stream, through the publish
        stream = client.chat.completions.create(
            model="latest", messages=USER, max_tokens=20, stream=True, extra_body={"ignore_eos": True}
        )
        first = next(iter(stream))
        forget = subprocess.run(
            [sys.executable, "-m", "lethe", "forget", "--collection", f"synth/entity/{entity.id}"]
            + ["--method", "grad_ascent", "--steps", "2", "-p", "eval_every=0", "--reason", "user asked", "--json"],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "LETHE_THREADS": "1"},
            timeout=300,
        )
        assert forget.returncode == 0, forget.stderr
        published = json.loads(forget.stdout)
        new = ws.ledger.resolve_version(published["version"]).name
        assert new != old

        deadline = time.monotonic() + 3
        while pool.latest_seen != new or new not in {m.name for m in pool.loaded()}:
            assert time.monotonic() < deadline, "the server did not follow latest"
            time.sleep(0.1)
        assert httpx.get(f"{server.url}/health").json()["latest"] == new
        assert client.chat.completions.create(model="latest", messages=USER, max_tokens=2).model == new
        with pytest.raises(openai.ConflictError) as refused:
            client.chat.completions.create(model=old, messages=USER, max_tokens=2)
        assert f"forget request {published['request_id']}" in refused.value.body["message"]

        gate.set()  # the reply that was streaming all along finishes, on the weights it began with
        rest = list(stream)
        assert {first.model, *(c.model for c in rest)} == {old}
        text = "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
        assert text and [c.choices[0].finish_reason for c in rest if c.choices][-1] == "length"
    pool.close()
    override = ModelPool(ws.ledger, base_dir=ws.home, allow_tainted=True)
    assert override.get(old).tainted
    override.close()
