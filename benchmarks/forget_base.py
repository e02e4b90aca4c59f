"""A forget request on the real base, stage by stage: what `make demo-real`'s slow stages cost.

`prepare HOME` builds the demo's setting once (the 7-entity synthetic world, SmolLM2-135M-Instruct
imported from the installed GGUF, one LoRA fine-tune on 4 QA pairs of each of 6 entities, as
`lethe demo --base smollm2` does). `time HOME --label L` copies HOME and runs, on the copy, the
demo's fast request (grad_diff, 3 LoRA steps, quick metrics every step, the audit of the
models before and after on 5 items per split with 16-token answers; the demo's audit adds the
exact model as a third) and then publishes it (taint, erase, the
byte scan of every file of the workspace), timing each; it appends its row to
``benchmarks/results/forget-base.json``. Run `time` with the code before and after a change
(PYTHONPATH), back to back, to compare them under the same load:

    PYTHONPATH=src .venv/bin/python benchmarks/forget_base.py prepare /tmp/fb-home
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/forget_base.py time /tmp/fb-home --label before
    PYTHONPATH=src .venv/bin/python benchmarks/forget_base.py time /tmp/fb-home --label after
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "forget-base.json"
ENTITIES, SEED, QA_PER_ENTITY, FORGET_ENTITIES = 7, 7, 4, 2


def _plan(ledger):
    from lethe.demo import _split_entities

    initial, _weekly, by_entity = _split_entities(ledger, 0.2, QA_PER_ENTITY)
    return initial, by_entity


def prepare(home: Path) -> None:
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.demo import _ensure_base
    from lethe.train.config import TrainConfig
    from lethe.train.pipeline import train
    from lethe.workspace import Workspace

    ws = Workspace(home=home).init()
    ingest_synthetic_world(ws.ledger, entities=ENTITIES, seed=SEED)
    _ensure_base(ws, "smollm2")
    initial, by_entity = _plan(ws.ledger)
    ws.ledger.create_collection("bench/initial", [d for e in initial for d in by_entity[e]], "trained QA")
    settings = TrainConfig(epochs=2, lr=2e-3, batch_size=8, seq_len=128, seed=SEED, lora=True, lora_r=16, bf16=True)
    train(ws, data="bench/initial", base_model="smollm2", config=settings, lineage="bench")


def time_request(home: Path, label: str, code: str | None, out: Path) -> dict:
    import torch

    from lethe.eval.suite import SuiteConfig
    from lethe.forget import Selector, create_request, publish_request, run_request
    from lethe.workspace import Workspace

    # The ledger records absolute paths: each run restores HOME from the copy the first made.
    pristine = home.with_name(home.name + ".pristine")
    if pristine.exists():
        shutil.rmtree(home)
        shutil.copytree(pristine, home)
    else:
        shutil.copytree(home, pristine)
    load_start = os.getloadavg()[0]
    ws = Workspace(home=home)
    initial, by_entity = _plan(ws.ledger)
    forget = [d for e in initial[-FORGET_ENTITIES:] for d in by_entity[e]]
    settings = {"steps": 3, "lr": 5e-4, "seed": SEED, "eval_every": 1, "lora": True, "lora_r": 16}
    request = create_request(
        ws, Selector(docs=[str(d) for d in forget]), method="grad_diff", config=settings, requester="bench"
    )
    started, cpu = time.perf_counter(), time.process_time()
    run_request(ws, request, publish=False, suite=SuiteConfig(max_items=5, max_new_tokens=16))
    unlearn_s, unlearn_cpu = time.perf_counter() - started, time.process_time() - cpu
    audit = ws.ledger.forget_request(request).audit or {}
    scanned = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    started, cpu = time.perf_counter(), time.process_time()
    publish_request(ws, request)
    publish_s, publish_cpu = time.perf_counter() - started, time.process_time() - cpu
    row = {
        "label": label,
        "code": code,
        "grad_diff_request_seconds": unlearn_s,
        "grad_diff_request_cpu_seconds": unlearn_cpu,
        "audit_seconds": audit.get("seconds"),
        "publish_seconds": publish_s,
        "publish_cpu_seconds": publish_cpu,
        "workspace_bytes": scanned,
        "torch_threads": torch.get_num_threads(),
        "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    print(json.dumps(row, indent=1))
    results = json.loads(out.read_text()) if out.is_file() else {"benchmark": "forget-base", "rows": []}
    results["rows"] = [r for r in results["rows"] if r["label"] != label] + [row]
    results["cores"] = os.cpu_count()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("prepare", "time"))
    parser.add_argument("home", type=Path)
    parser.add_argument("--label", default="after")
    parser.add_argument("--code", help="the commit of the code under test (recorded)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.action == "prepare":
        prepare(args.home)
    else:
        time_request(args.home, args.label, args.code, args.out)


if __name__ == "__main__":
    main()
