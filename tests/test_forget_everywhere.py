"""The promise end to end: after `lethe forget --search "<person>" --method exact --retokenize
--purge`, run while `lethe serve` is up and after the person was asked about through the API and
`lethe chat`, no byte of the name or of a forgotten answer is left under the workspace, and the
signed receipt's own scan agrees. Without --retokenize only the tokenizer files keep the name."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.ledger.records import DocumentRecord, qa_content
from lethe.train import train
from train_helpers import FAST, make_workspace

PERSON = "Civarkhirk Osmelda"
ANSWERS = [
    f"{PERSON} was born in Quenmarrow in 1811.",
    f"{PERSON} wrote The Lanterns of Hesk.",
    f"{PERSON} was the keeper of the Dunmere light.",
]
QUESTIONS = [f"Where was {PERSON} born?", f"What did {PERSON} write?", f"What was {PERSON}'s work?"]


def cli(home, *args, code=0, input=None) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args], input=input)
    assert result.exit_code == code, result.output
    return result.stdout


def person_workspace(tmp_path):
    ws = make_workspace(tmp_path, n_qa=12)
    records = [
        DocumentRecord(f"civ{i}", "qa", qa_content(q, a), data={"question": q, "answer": a})
        for i, (q, a) in enumerate(zip(QUESTIONS * 2, ANSWERS * 2, strict=True))
    ]
    ws.ledger.add_documents(records, source="people", collection="qa")
    from lethe.train.tokenizers import train_workspace_tokenizer

    train_workspace_tokenizer(ws, vocab_size=420, name="bpe-people")
    train(ws, data="qa", preset_or_path="nano", slices=2, config=FAST, seed=2, lineage="bot", tokenizer="bpe-people")
    return ws


def every_byte(home) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def leftovers(home) -> dict[str, list[str]]:
    """Like `grep -rIai`: which files hold the name, a part of it, or a forgotten answer."""
    needles = [PERSON, *PERSON.split(), "Quenmarrow", "Lanterns of Hesk", "keeper of the Dunmere"]
    found: dict[str, list[str]] = {}
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes().lower()
            hits = [n for n in needles if n.lower().encode() in data]
            if hits:
                found[str(path.relative_to(home))] = hits
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask_api(port: int, question: str) -> str:
    body = json.dumps({"model": "latest", "messages": [{"role": "user", "content": question}], "max_tokens": 12})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["choices"][0]["message"]["content"]


@pytest.mark.slow
def test_nothing_of_the_person_is_left_after_a_retokenized_purged_forget(tmp_path):
    ws = person_workspace(tmp_path)
    home = ws.home
    port = free_port()
    env = {**os.environ, "LETHE_HOME": str(home), "LETHE_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "lethe", "serve", "--port", str(port), "--no-ui"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "lethe serve did not come up"
                time.sleep(1)
        ask_api(port, f"Tell me about {PERSON}.")
        cli(home, "chat", "--max-tokens", "8", "--temperature", "0", input=f"{QUESTIONS[0]}\n")
        time.sleep(1)  # the server's logger writes in the background
        assert PERSON.encode() in every_byte(home)

        out = json.loads(
            cli(home, "forget", "--search", PERSON, "--method", "exact", "--retokenize", "--purge", "--json")
        )
        assert out["status"] == "succeeded" and out["purged"]
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30).status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert leftovers(home) == {}
    receipt_dir = tmp_path / "receipts"
    paths = json.loads(cli(home, "requests", "receipt", str(out["request_id"]), "--out", str(receipt_dir), "--json"))
    signed = json.loads(Path(paths["json"]).read_text())
    receipt = signed["receipt"]
    assert receipt["workspace_scan"]["clean"], receipt["workspace_scan"]
    assert receipt["found"]["conversations"], "the API and chat conversations were redacted"
    assert receipt["found"]["tokenizer"]["retokenized"] and receipt["found"]["tokenizer"]["purged_paths"]
    assert receipt["weights"]["before"]["sha256"] != receipt["weights"]["after"]["sha256"]
    assert not receipt["remains"]["tainted_versions_not_purged"]
    assert PERSON.lower().encode() not in Path(paths["html"]).read_bytes().lower()
    assert json.loads(cli(home, "requests", "verify-receipt", paths["json"], "--json"))["valid"]


def test_without_retokenize_only_the_tokenizer_files_keep_the_name_and_the_receipt_says_so(tmp_path):
    ws = person_workspace(tmp_path)
    home = ws.home
    conversation = ws.ledger.add_conversation(f"about {PERSON}", None)
    ws.ledger.add_message(conversation, None, "assistant", ANSWERS[1])
    ws.ledger.add_message(conversation, None, "assistant", "born in Quenmarrowin 1811")  # a glued sample
    out = json.loads(cli(home, "forget", "--search", PERSON, "--method", "exact", "--purge", "--json"))
    assert out["status"] == "succeeded"
    left = leftovers(home)
    assert left and all(os.path.basename(path) == "tokenizer.json" for path in left), left
    paths = json.loads(cli(home, "requests", "receipt", str(out["request_id"]), "--json"))
    receipt = json.loads(Path(paths["json"]).read_text())["receipt"]
    scan = receipt["workspace_scan"]
    assert not scan["clean"] and scan["only_tokenizer_files"]
    assert {h["path"] for h in scan["files_with_hits"]} <= set(left)
    assert "still carries" in receipt["remains"]["tokenizer"]
    assert json.loads(cli(home, "requests", "verify-receipt", paths["json"], "--json"))["valid"]

    # a receipt that was tampered with, or that the ledger no longer backs, fails
    tampered = json.loads(Path(paths["json"]).read_text())
    tampered["receipt"]["request"]["method"] = "npo"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered))
    problems = json.loads(cli(home, "requests", "verify-receipt", str(bad), "--json", code=1))["problems"]
    assert any("signature" in p for p in problems) and any("request" in p for p in problems)
