"""`lethe forget` with an approximate method under `accelerate launch`, two CPU processes (gloo)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lethe.forget.requests import create_request, run_request
from lethe.forget.selectors import Selector
from lethe.train import train
from lethe.train.config import TrainConfig
from train_helpers import make_workspace

torch.set_num_threads(1)
ACCELERATE = Path(sys.executable).parent / "accelerate"
SETTINGS = {"steps": 8, "lr": 2e-3, "forget_batch_size": 4, "retain_batch_size": 4, "eval_every": 4}


@pytest.mark.skipif(not ACCELERATE.exists() and not shutil.which("accelerate"), reason="accelerate CLI missing")
def test_two_processes_unlearn_like_one_and_record_every_forget_and_retain_exposure(tmp_path):
    ws = make_workspace(tmp_path, n_qa=12)
    config = TrainConfig(epochs=12, lr=3e-3, batch_size=4, seq_len=64, warmup_ratio=0.1)
    train(ws, data="qa", preset_or_path="nano", slices=1, config=config, lineage="base")
    forget = [str(d) for d in sorted(ws.ledger.collection_ids("qa"))[:4]]
    launcher = str(ACCELERATE if ACCELERATE.exists() else shutil.which("accelerate"))
    params = [arg for key, value in SETTINGS.items() for arg in ("-p", f"{key}={value}")]
    command = [
        launcher,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29541",
        "-m",
        "lethe",
        "--home",
        str(ws.home),
        "forget",
        "--docs",
        ",".join(forget),
        "--method",
        "grad_diff",
        *params,
        "--no-publish",
        "--json",
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count('"request_id"') == 1  # only the main process printed

    ledger = ws.ledger
    [ddp_run] = ledger.runs(kind="unlearn")
    assert ddp_run.status == "succeeded" and ddp_run.world_size == 2
    [ddp_request] = ledger.forget_requests()
    assert ddp_request.status == "evaluated"
    forget_ids = {d for d, _ in ledger.forget_request_documents(ddp_request.id)}
    rows = [(e.step, e.document_id) for e in ledger.exposures(run_id=ddp_run.id, limit=100_000)]
    # every step trained on the whole forget set (batch 4 of 4) and 4 retain documents
    assert sorted({step for step, _ in rows}) == list(range(1, SETTINGS["steps"] + 1))
    for step in range(1, SETTINGS["steps"] + 1):
        documents = {d for s, d in rows if s == step}
        assert forget_ids <= documents and len(documents - forget_ids) == SETTINGS["retain_batch_size"]

    # One process, same request: the same steps on the same documents, and the same forgetting
    # (each process's loss is a mean over its half of the batch, so the gradients differ by
    # rounding and by uneven token counts only).
    request_id = create_request(ws, Selector(docs=forget), method="grad_diff", config=dict(SETTINGS))
    run_request(ws, request_id, publish=False)
    single_run = next(r for r in ledger.runs(kind="unlearn") if r.id != ddp_run.id)
    single_rows = [(e.step, e.document_id) for e in ledger.exposures(run_id=single_run.id, limit=100_000)]
    assert sorted(single_rows) == sorted(rows)
    ddp_history, single_history = ddp_run.metrics["history"], single_run.metrics["history"]
    assert len(ddp_history) == len(single_history) == SETTINGS["steps"]
    print(
        ddp_history[3]["metrics"],
        ddp_history[-1]["metrics"],
        single_history[3]["metrics"],
        single_history[-1]["metrics"],
    )
    ddp_end, single_end = ddp_history[-1]["metrics"], single_history[-1]["metrics"]
    for name in ("forget_loss", "retain_loss"):
        assert ddp_end[name] == pytest.approx(single_end[name], rel=0.05), name
    for name in ("forget_accuracy", "retain_accuracy"):
        assert abs(ddp_end[name] - single_end[name]) <= 0.05, name
