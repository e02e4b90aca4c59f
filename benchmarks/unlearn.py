"""What forgetting costs: every unlearning method against full retraining, in one run.

On a synthetic world, a lineage is trained in 10 slices (by default) with a fixed slice
plan that puts one entity's QA pairs in each of slices 9, 8, 6, 4, 2 and 0. Then, in the same
process and the same workspace:

- **full retraining**: a fresh lineage trained from scratch on the same slice plan without the
  forget set of the last slice (the retain set). Every ratio is against its wall time. It
  runs twice, first and last, so drifting load on shared cores shows; the mean is the baseline.
- **approximate methods** (every registered method but `exact`): a forget request for that
  entity through `create_request` + `run_request(publish=False, evaluate=False)`, the real
  path. *end-to-end* is those two calls; *compute-only* is the unlearning loop's own wall
  time (`UnlearnResult.wall_time`, recorded in the candidate version's meta).
- **exact replay** with the forget set in slice 9, 8, 6, 4, 2, 0: the same kind of request
  with `method="exact"`. *end-to-end* as above; *compute-only* sums the replayed slices'
  optimizer-loop seconds as the training run records them (full retraining likewise).
- **exact replay with `retokenize`** for the last slice's forget set: the tokenizer is
  retrained without it and every slice is replayed from scratch (the price of a tokenizer
  that provably never saw the documents).

Every request is filed against the same base version and left unpublished, so each starts
from the same model; the script checks that the base stays `latest`, untainted and unerased,
and that each replay restored a checkpoint of the original training run. Exact requests run
from the last slice to the first (see `exact_replays`).

    python benchmarks/unlearn.py                              # nano, 60 entities (~4 min)
    python benchmarks/unlearn.py --preset tiny --entities 200 --epochs 20 --steps 60

Writes benchmarks/results/unlearn.json and prints a Markdown table. Timings use one torch
thread (`--threads`); on shared cores absolute seconds are noisy, ratios from one run count.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import torch

from lethe.data.synth_ingest import ingest_synthetic_world
from lethe.forget import Selector, create_request, run_request
from lethe.train import TrainConfig, train
from lethe.train.tokenizers import train_workspace_tokenizer
from lethe.unlearn import list_methods
from lethe.workspace import Workspace

RESULTS = Path(__file__).parent / "results" / "unlearn.json"
TOKENIZER = "bench-bpe"
TARGET_RATIO = 0.15
"""Exact replay of the last of 10 slices should cost at most this share of full retraining."""


# ------------------------------------------------------------------------------- the setup


def forget_positions(slices: int) -> list[int]:
    """Slices that hold a forget set: the last, then every other one down to the first."""
    return [slices - 1, *range(slices - 2, -1, -2)]


def entity_forget_sets(ws: Workspace, count: int, seed: int) -> list[list[int]]:
    """`count` trained entities' QA document ids (one forget set each), chosen by seed."""
    ledger = ws.ledger
    qa = set(ledger.collection_ids("synth/qa"))
    names = sorted(c.name for c, _ in ledger.collections() if c.name.startswith("synth/entity/"))
    sets = [sorted(qa & set(ledger.collection_ids(n))) for n in names]
    sets = [s for s in sets if s]
    if len(sets) < count + 1:
        raise SystemExit(f"the world has {len(sets)} trained entities; {count + 1} needed (raise --entities)")
    return random.Random(seed).sample(sets, count)


def slice_plan(all_ids: Sequence[int], placed: dict[int, list[int]], slices: int, seed: int) -> list[list[int]]:
    """Slices of near-equal size with each forget set in its slice; the rest dealt at random."""
    plan = [list(placed.get(i, [])) for i in range(slices)]
    taken = {d for ids in placed.values() for d in ids}
    rest = [d for d in all_ids if d not in taken]
    random.Random(seed).shuffle(rest)
    for doc in rest:
        min(plan, key=len).append(doc)
    return [sorted(ids) for ids in plan]


def loop_seconds(ws: Workspace, run_id: int) -> float:
    return sum(s.get("seconds", 0.0) for s in ws.ledger.run(run_id).metrics["slices"])


def run_steps(ws: Workspace, run_id: int) -> int:
    return int(ws.ledger.run(run_id).metrics["global_step"])


# ------------------------------------------------------------------------------- measurements


def full_retrain(ws: Workspace, args, config: TrainConfig, plan, forget: list[int], name: str) -> dict:
    """Train a fresh lineage on `plan` without `forget`, timed end to end."""
    retain_plan = [[d for d in ids if d not in set(forget)] for ids in plan]
    start, cpu = time.perf_counter(), time.process_time()
    versions = train(
        ws,
        data="synth/qa",
        preset_or_path=args.preset,
        config=config,
        slice_plan=retain_plan,
        lineage=name,
        tokenizer=TOKENIZER,
    )
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    run_id = versions[-1].run_id
    return {
        "kind": "retrain",
        "method": "full retraining",
        "slices_replayed": len(plan),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "loop_seconds": loop_seconds(ws, run_id),
        "steps": run_steps(ws, run_id),
        "run_id": run_id,
        "weights_sha256": versions[-1].weights_sha256,
    }


def base_untouched(ws: Workspace, base, forget: list[int], aliases_before: dict) -> bool:
    """The request moved no alias, left the base published and untainted, erased nothing."""
    ledger = ws.ledger
    now = ledger.resolve_version(base.id, allow_tainted=True)
    erased = any(d.forgotten_at is not None for d in ledger.documents(forget))
    return ledger.aliases() == aliases_before and now.status == "published" and now.tainted_at is None and not erased


def request(ws: Workspace, base, forget: list[int], method: str, config: dict) -> tuple:
    """File and run one unpublished, unevaluated forget request.

    Returns (request id, wall seconds, CPU seconds, whether the base was left untouched)."""
    aliases = ws.ledger.aliases()
    start, cpu = time.perf_counter(), time.process_time()
    request_id = create_request(
        ws,
        Selector(docs=[str(d) for d in forget]),
        method=method,
        config=config,
        version=str(base.id),
        reason=f"benchmark: {method}",
    )
    outcome = run_request(ws, request_id, publish=False, evaluate=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    if outcome.status != "evaluated":
        raise RuntimeError(f"{method}: request {request_id} ended {outcome.status}")
    return request_id, seconds, cpu_seconds, base_untouched(ws, base, forget, aliases)


def approximate(ws: Workspace, base, forget: list[int], methods: Sequence[str], config: dict) -> list[dict]:
    rows = []
    for method in methods:
        request_id, seconds, cpu_seconds, untouched = request(ws, base, forget, method, config)
        version = ws.ledger.resolve_version(ws.ledger.forget_request(request_id).result_version_id, allow_tainted=True)
        meta = version.meta
        rows.append(
            {
                "kind": "approximate",
                "method": method,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "method_seconds": meta["wall_time"],
                "steps": meta["steps"],
                "request_id": request_id,
                "candidate_status": version.status,
                "base_untouched": untouched,
            }
        )
        print(
            f"  {method:12} {seconds:6.2f}s end-to-end, {meta['wall_time']:6.2f}s method, {meta['steps']} steps",
            flush=True,
        )
    return rows


def exact_replays(ws: Workspace, base, train_run: int, forget_sets: dict[int, list[int]], slices: int) -> list[dict]:
    """One exact request per forget set, from the last slice to the first.

    Each unpublished replay registers checkpoints for the slices it retrains. Going backwards,
    no request needs a checkpoint of a slice an earlier request retrained, so every replay
    starts from the original run's state whichever checkpoint lookup replay uses;
    `restored_original` checks that it did.
    """
    ledger, rows = ws.ledger, []
    for position in sorted(forget_sets, reverse=True):
        forget = forget_sets[position]
        request_id, seconds, cpu_seconds, untouched = request(ws, base, forget, "exact", {})
        result = ledger.resolve_version(ledger.forget_request(request_id).result_version_id, allow_tainted=True)
        run = ledger.run(result.run_id)
        restored = ledger.resolve_version(run.parent_version_id, allow_tainted=True) if run.parent_version_id else None
        replayed = [v for v in ledger.list_versions(include_discarded=True) if v.run_id == run.id]
        rows.append(
            {
                "kind": "exact",
                "method": "exact",
                "forget_slice": position,
                "slices_replayed": slices - position,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "loop_seconds": loop_seconds(ws, run.id),
                "steps": run_steps(ws, run.id),
                "run_id": run.id,
                "request_id": request_id,
                "restored_from": restored.name if restored else "base model (initial weights)",
                "restored_original": restored is None or restored.run_id == train_run,
                "candidates_only": bool(replayed) and all(v.status == "candidate" for v in replayed),
                "base_untouched": untouched,
                "weights_sha256": result.weights_sha256,
            }
        )
        print(
            f"  exact, slice {position}: {slices - position} slices replayed in {seconds:6.2f}s "
            f"({rows[-1]['steps']} steps)",
            flush=True,
        )
    return rows


def retokenized_replay(ws: Workspace, base, forget: list[int], slices: int) -> dict:
    """An exact request with `retokenize`: tokenizer retrained, every slice replayed from scratch."""
    request_id, seconds, cpu_seconds, untouched = request(ws, base, forget, "exact", {"retokenize": True})
    ledger = ws.ledger
    result = ledger.resolve_version(ledger.forget_request(request_id).result_version_id, allow_tainted=True)
    lineage = ledger.lineage(result.lineage_id)
    corpus = set(ledger.tokenizer_document_ids(lineage.config["tokenizer_id"]))
    row = {
        "kind": "exact",
        "method": "exact --retokenize",
        "forget_slice": slices - 1,
        "slices_replayed": slices,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "loop_seconds": loop_seconds(ws, result.run_id),
        "steps": run_steps(ws, result.run_id),
        "run_id": result.run_id,
        "request_id": request_id,
        "base_untouched": untouched,
        "tokenizer_clean": not corpus & set(forget),
    }
    print(f"  exact --retokenize: {slices} slices replayed in {seconds:6.2f}s", flush=True)
    return row


# ------------------------------------------------------------------------------- report


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(result: dict) -> str:
    base, base_loop = result["baseline_seconds"], result["baseline_loop_seconds"]
    base_cpu = result["baseline_cpu_seconds"]
    header = (
        "| method | forget set in slice | slices replayed | steps | end-to-end s | ratio | "
        "compute-only s | ratio | CPU s | ratio |"
    )
    lines = [header, "|---" * 10 + "|"]
    for r in result["rows"]:
        where = r.get("forget_slice", "—" if r["kind"] == "approximate" else "(none)")
        inner = r.get("method_seconds", r.get("loop_seconds"))
        lines.append(
            f"| {r['method']} | {where} | {r.get('slices_replayed', '—')} | "
            f"{r['steps']} | {r['seconds']:.2f} | {r['seconds'] / base:.1%} | "
            f"{inner:.2f} | {inner / base_loop:.1%} | "
            f"{r['cpu_seconds']:.2f} | {r['cpu_seconds'] / base_cpu:.1%} |"
        )
    t, m = result["target"], result["machine"]
    notes = [
        (
            f"Ratios are to full retraining on the retain set (mean of {len(result['baseline_runs'])}"
            f" runs: {base:.2f}s end-to-end, {base_loop:.2f}s compute-only). End-to-end: "
            "`create_request` + `run_request(publish=False, evaluate=False)` (`train` for "
            "retraining). Compute-only: the unlearning loop (approximate) or the optimizer loop of "
            "the trained slices (exact, retraining). CPU: this process's CPU time over the "
            "end-to-end span, which other processes on shared cores barely disturb (I/O waits, "
            "e.g. fsync, are not in it)."
        ),
        (
            f"Exact replay of the last slice: {t['ratio']:.1%} of full retraining end-to-end "
            f"(target ≤ {TARGET_RATIO:.0%}: {'met' if t['met'] else 'NOT met'}); "
            f"{t['loop_ratio']:.1%} compute-only, {t['cpu_ratio']:.1%} in CPU time, "
            f"{t['steps_ratio']:.1%} of the steps."
        ),
        (
            f"torch threads: {m['torch_threads']} (set for stable timings); load average "
            f"{m['load_average_start']} → {m['load_average_end']} on {m['cpu_count']} cores."
        ),
    ]
    lines += ["", *notes]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="nano", help="Model preset (nano, tiny, ...).")
    parser.add_argument("--entities", type=int, default=60, help="Synthetic world size.")
    parser.add_argument("--epochs", type=int, default=10, help="Training epochs per slice.")
    parser.add_argument("--steps", type=int, default=30, help="Steps of each approximate method.")
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--methods", default="all", help="Comma-separated approximate methods, or 'all' (every one but exact)."
    )
    parser.add_argument(
        "--retrain-runs", type=int, default=2, help="Full retrainings (first and last); their mean is the baseline."
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 for stable timings).")
    parser.add_argument("--home", type=Path, help="Keep the workspace here (default: a temp dir).")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = (
        list_methods()  # the approximate ones: exact replay is measured on its own above
        if args.methods == "all"
        else [m.strip() for m in args.methods.split(",") if m.strip()]
    )
    config = TrainConfig(
        task="sft",
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seq_len=128,
        seed=args.seed,
        warmup_ratio=0.05,
    )
    unlearn_config = {"steps": args.steps, "seed": args.seed}
    info = machine()
    with tempfile.TemporaryDirectory(prefix="lethe-bench-unlearn-") as tmp:
        home = args.home or Path(tmp) / "home"
        ws = Workspace(home=home).init()
        ingest_synthetic_world(ws.ledger, entities=args.entities, seed=args.seed)
        # Named, because a retokenized replay adds a newer workspace tokenizer.
        train_workspace_tokenizer(ws, collections=["synth/qa"], vocab_size=4096, name=TOKENIZER)
        positions = forget_positions(args.slices)
        sets = entity_forget_sets(ws, len(positions), args.seed)
        forget_sets = dict(zip(positions, sets))
        all_ids = sorted(ws.ledger.collection_ids("synth/qa"))
        plan = slice_plan(all_ids, forget_sets, args.slices, args.seed)
        main_forget = forget_sets[args.slices - 1]

        print(
            f"world: {args.entities} entities, {len(all_ids)} QA in {args.slices} slices "
            f"of {min(map(len, plan))}-{max(map(len, plan))}; forget sets of "
            f"{sorted(len(s) for s in sets)} QA; {args.preset}, {args.epochs} epochs; "
            f"torch threads {torch.get_num_threads()}",
            flush=True,
        )
        start = time.perf_counter()
        original = train(
            ws,
            data="synth/qa",
            preset_or_path=args.preset,
            config=config,
            slice_plan=plan,
            lineage="original",
            tokenizer=TOKENIZER,
        )
        train_seconds = time.perf_counter() - start
        base, train_run = original[-1], original[-1].run_id
        print(f"original lineage: {train_seconds:.2f}s, {run_steps(ws, train_run)} steps", flush=True)

        retrains = [full_retrain(ws, args, config, plan, main_forget, "retrain-1")]
        print(f"full retraining: {retrains[0]['seconds']:.2f}s", flush=True)
        approx = approximate(ws, base, main_forget, methods, unlearn_config)
        exact = exact_replays(ws, base, train_run, forget_sets, args.slices)
        retokenized = retokenized_replay(ws, base, main_forget, args.slices)
        for n in range(2, args.retrain_runs + 1):
            retrains.append(full_retrain(ws, args, config, plan, main_forget, f"retrain-{n}"))
            print(f"full retraining #{n}: {retrains[-1]['seconds']:.2f}s", flush=True)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]

    baseline = statistics.mean(r["seconds"] for r in retrains)
    baseline_loop = statistics.mean(r["loop_seconds"] for r in retrains)
    baseline_cpu = statistics.mean(r["cpu_seconds"] for r in retrains)
    retrain_row = {**retrains[0], "seconds": baseline, "loop_seconds": baseline_loop, "cpu_seconds": baseline_cpu}
    for row in [*approx, *exact, retokenized]:
        row["ratio"] = row["seconds"] / baseline
        row["cpu_ratio"] = row["cpu_seconds"] / baseline_cpu
        if "method_seconds" in row:
            row["method_ratio"] = row["method_seconds"] / baseline_loop
        if "loop_seconds" in row:
            row["loop_ratio"] = row["loop_seconds"] / baseline_loop
            row["steps_ratio"] = row["steps"] / retrain_row["steps"]
    last = next(r for r in exact if r["forget_slice"] == args.slices - 1)
    by_replayed = sorted(exact, key=lambda r: r["slices_replayed"])
    result = {
        "benchmark": "unlearn",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "config": {
            "preset": args.preset,
            "entities": args.entities,
            "slices": args.slices,
            "train": config.to_dict(),
            "unlearn": unlearn_config,
            "methods": methods,
            "qa_documents": len(all_ids),
            "slice_sizes": [len(s) for s in plan],
            "forget_set_sizes": {str(k): len(v) for k, v in forget_sets.items()},
            "timing": "seconds: create_request + run_request(publish=False, "
            "evaluate=False), or train() for retraining; method_seconds: "
            "UnlearnResult.wall_time; loop_seconds: the training run's "
            "per-slice optimizer-loop seconds; cpu_seconds: process CPU "
            "time over the same span as seconds; *_ratio: against the mean "
            "full retraining (loop/method ratios against its loop seconds)",
        },
        "original_train_seconds": train_seconds,
        "baseline_seconds": baseline,
        "baseline_loop_seconds": baseline_loop,
        "baseline_cpu_seconds": baseline_cpu,
        "baseline_runs": [
            {k: r[k] for k in ("seconds", "loop_seconds", "cpu_seconds", "steps", "run_id")} for r in retrains
        ],
        "rows": [retrain_row, *approx, *exact, retokenized],
        "target": {
            "max_ratio": TARGET_RATIO,
            "ratio": last["ratio"],
            "met": last["ratio"] <= TARGET_RATIO,
            "loop_ratio": last["loop_ratio"],
            "cpu_ratio": last["cpu_ratio"],
            "cpu_met": last["cpu_ratio"] <= TARGET_RATIO,
            "steps_ratio": last["steps_ratio"],
        },
        "checks": {
            "replay_steps_grow": all(a["steps"] < b["steps"] for a, b in pairwise(by_replayed)),
            "replay_seconds_grow": all(a["seconds"] <= b["seconds"] for a, b in pairwise(by_replayed)),
            "replay_cpu_seconds_grow": all(a["cpu_seconds"] <= b["cpu_seconds"] for a, b in pairwise(by_replayed)),
            "replay_of_last_slice_equals_retraining": last["weights_sha256"] == retrains[0]["weights_sha256"],
            "retrainings_identical": len({r["weights_sha256"] for r in retrains}) == 1,
            "base_untouched": all(r["base_untouched"] for r in [*approx, *exact, retokenized]),
            "retokenized_tokenizer_never_saw_the_forget_set": retokenized["tokenizer_clean"],
            "replays_restored_original_checkpoints": all(r["restored_original"] for r in exact),
            "replays_left_candidates_only": all(r["candidates_only"] for r in exact),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print()
    print(markdown(result))
    print(f"\nchecks: {json.dumps(result['checks'])}")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
