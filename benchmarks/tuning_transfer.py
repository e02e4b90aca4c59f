"""Does a calibration's forget quality predict the real forget set's? (a tuned `lethe bench synth`)

For the best trials of every tuned method (by the pooled calibration forget quality) and the
untuned start, re-run the trial's settings on each calibration draw and on the real forget
set, each against its own exact replay, and write every forget quality and utility with the
rank correlation between calibration and real to `transfer.json` beside the results. A
diagnostic only: the tuner never sees the real forget set; this asks how far it could have.

    python benchmarks/tuning_transfer.py /tmp/bench/synth-tuned/results.json --top 6
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results.json of a tuned synth benchmark")
    parser.add_argument("--top", type=int, default=6, help="best trials per method to re-run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("LETHE_HOME", "lethe-home")),
        help="the lethe workspace the benchmark ran in (results name its paths $LETHE_HOME/...)",
    )
    args = parser.parse_args()
    from lethe.threads import apply_threads

    apply_threads(args.threads)

    from scipy.stats import spearmanr

    from lethe.bench.runner import examples_for
    from lethe.data.tokenizer import load_tokenizer
    from lethe.eval.suite import version_path
    from lethe.eval.tofu import TofuEvalConfig
    from lethe.forget.tuning import TuneSettings, TuningProblem, exact_reference, run_trial
    from lethe.train.config import TrainConfig
    from lethe.workspace import Workspace, local_path

    result = json.loads(args.results.read_text())
    config, tuning = result["config"], result["tuning"]
    ws = Workspace(home=local_path(result["workspace"], home=args.home))
    ledger = ws.ledger
    trained = set(ledger.collection_ids("synth/qa"))
    target = result["models"]["target"]
    forget_ids = sorted(
        {i for e in result["forgotten_entities"] for i in ledger.collection_ids(f"synth/entity/{e}")} & trained
    )
    draws = [
        (
            d["subjects"],
            sorted({i for s in d["subjects"] for i in ledger.collection_ids(f"synth/entity/{s}")} & trained),
        )
        for d in tuning["calibration"]["draws"]
    ]
    calibration_ids = {i for _, ids in draws for i in ids}
    retain = sorted(trained - set(forget_ids) - calibration_ids)
    random.Random(config["seed"]).shuffle(retain)
    retain_docs = ledger.documents(sorted(retain[:2000]))
    tokenizer = load_tokenizer(local_path(target["path"], home=args.home))
    train_config = TrainConfig(task="auto", seq_len=config["seq_len"])
    retain_examples = examples_for(retain_docs, tokenizer, train_config)
    evaluation = TofuEvalConfig(max_items=60, seed=config["seed"], max_new_tokens=48, batch_size=16)
    fixed = {"forget_batch_size": config["unlearn_batch_size"], "seed": config["seed"]}

    def problem(name: str, ids: list[int], exact_path: Path) -> tuple[str, TuningProblem]:
        docs = ledger.documents(ids)
        return name, TuningProblem(
            target_path=local_path(target["path"], home=args.home),
            exact_path=exact_path,
            exact_seconds=0.0,
            forget_examples=examples_for(docs, tokenizer, train_config),
            retain_examples=retain_examples,
            forget_documents=[d for d in docs if d.kind == "qa"],
            retain_documents=[d for d in retain_docs if d.kind == "qa"],
            eval_config=evaluation,
            examples_of=lambda documents, t: examples_for(documents, t, train_config),
            fixed=fixed,
        )

    sets = []
    for n, (_subjects, ids) in enumerate(draws):
        row = ledger.tuning_calibration(target["version_id"], ids)
        exact = ledger.resolve_version(row.exact_version_id, allow_tainted=True)
        sets.append(problem(f"draw {n + 1}", ids, Path(version_path(ws, exact))))
    sets.append(problem("forget set", forget_ids, local_path(result["models"]["exact"]["path"], home=args.home)))
    settings = TuneSettings(robustness=False)
    references = {name: exact_reference(p, settings) for name, p in sets}

    out: dict = {"results": str(args.results), "top": args.top, "methods": {}}
    started = time.perf_counter()
    for method, study in tuning["studies"].items():
        complete = [t for t in study["trials"] if t["state"] == "complete"]
        best = sorted(complete, key=lambda t: (-t["forget_quality"], t["number"]))[: args.top]
        chosen = (study.get("best") or {}).get("number")
        picks = {t["number"]: t for t in [complete[0], *best, *(t for t in complete if t["number"] == chosen)]}
        rows = []
        for number, trial in sorted(picks.items()):
            row = {
                "trial": number,
                "params": trial["params"],
                "chosen": number == chosen,
                "pooled_calibration_forget_quality": trial["forget_quality"],
                "pooled_calibration_utility_fraction": trial["utility_fraction"],
            }
            for name, p in sets:
                outcome = run_trial(method, p, references[name], trial["params"])
                row[name] = {"forget_quality": outcome.forget_quality, "utility_fraction": outcome.utility_fraction}
            rows.append(row)
            print(
                method,
                number,
                {
                    k: round(v["forget_quality"], 4)
                    for k, v in row.items()
                    if isinstance(v, dict) and "forget_quality" in v
                },
                flush=True,
            )
        calibration = [r["pooled_calibration_forget_quality"] for r in rows]
        real = [r["forget set"]["forget_quality"] for r in rows]
        first = [r["draw 1"]["forget_quality"] for r in rows]
        second = [r["draw 2"]["forget_quality"] for r in rows] if len(draws) > 1 else first
        out["methods"][method] = {
            "trials": rows,
            "spearman_calibration_vs_forget_set": float(spearmanr(calibration, real).statistic),
            "spearman_draw1_vs_draw2": float(spearmanr(first, second).statistic),
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    path = args.results.parent / "transfer.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
