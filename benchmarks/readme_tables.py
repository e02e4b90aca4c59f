"""Regenerate the README's figures from the files the benchmarks and the demo write.

Every table of README.md between `<!-- readme_tables:NAME -->` and `<!-- /readme_tables -->` is
generated here from `benchmarks/results/` (one function per table, named after its block), so a
figure in the README is always one a run wrote. `--check` exits 1 (and lists the blocks) when
the README differs from what the results say; the test suite runs it.

    .venv/bin/python benchmarks/readme_tables.py           # rewrite README.md's tables
    .venv/bin/python benchmarks/readme_tables.py --check   # fail if they are stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- readme_tables:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /readme_tables -->)", re.DOTALL)
TABLES: dict[str, Callable[[], str]] = {}


def table(name: str):
    def register(function: Callable[[], str]) -> Callable[[], str]:
        TABLES[name] = function
        return function

    return register


def load(relative: str) -> dict:
    return json.loads((RESULTS / relative).read_text(encoding="utf-8"))


def markdown(header: list[str], rows: list[list[str]], align: str) -> str:
    """A Markdown table; `align` has one letter per column: l(eft) or r(ight)."""
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def num(value: float | None, digits: int = 3) -> str:
    """A metric: fixed digits, tiny values in scientific notation, a real minus sign."""
    if value is None:
        return ""
    if value != 0 and abs(value) < 10**-digits:
        text = f"{value:.1e}"
    else:
        text = f"{value:.{digits}f}"
    return minus(text)


def minus(text: str) -> str:
    """A typographic minus for a negative figure (never `−0.0`)."""
    if text.startswith("-"):
        return text[1:] if float(text.rstrip("%")) == 0 else "−" + text[1:]
    return text


def pct(value: float) -> str:
    return minus(f"{value:.1f}%")


@table("ledger")
def ledger_table() -> str:
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    rows = [
        [
            names.get(r["backend"], r["backend"]),
            f"{r['ingest_docs_per_s']:,.0f}",
            f"{r['exposures_per_s']:,.0f}",
            f"{r['saw_query_ms']:.2f} ms",
            f"{r['collection_query_ms']:.2f} ms",
        ]
        for r in load("ledger.json")["results"]
    ]
    header = [
        "backend",
        "ingest docs/s",
        "exposures/s",
        "which versions saw doc X",
        "docs of collection C that version V saw",
    ]
    return markdown(header, rows, "lrrrr")


@table("train")
def train_table() -> str:
    rows = [
        [
            r["preset"],
            f"{r['parameters'] / 1e6:.2f}M",
            r["precision"],
            f"{r['lethe_tokens_per_s']:,}",
            f"{r['minimal_tokens_per_s']:,}",
            pct(r["step_overhead_pct"]),
            pct(r["mfu_pct"]),
        ]
        for r in load("train.json")["throughput"]
        if "preset" in r
    ]
    header = ["preset", "params", "precision", "lethe tok/s", "minimal tok/s", "overhead", "MFU"]
    return markdown(header, rows, "lrlrrrr")


@table("train_qa")
def train_qa() -> str:
    qa = load("train.json")["qa"]
    return (
        f"A `{qa['preset']}` model trained on the QA of a 100-entity synthetic world ({qa['train_questions']:,} "
        f"pairs, {qa['config']['epochs']} epochs, {'bf16' if qa['config']['bf16'] else 'fp32'}) reached "
        f"**{qa['trained']['exact_match']:.1%} exact match on its training questions and "
        f"{qa['holdout']['exact_match']:.1%} on {qa['holdout_questions']} holdout questions in "
        f"{qa['train_seconds']:.0f} s**.\n"
    )


@table("train_base")
def train_base_table() -> str:
    data = load("train.json")["base"]
    rows = [
        [
            r["method"],
            r["precision"],
            f"{r['trainable']:,}",
            f"{r['tokens_per_second']:,.0f}",
            f"{r['tokens_per_cpu_second']:,.0f}",
            pct(r["mfu_cpu"] * 100),
        ]
        for r in data["rows"]
    ]
    first = data["rows"][0]
    peaks = {r["precision"]: r["cpu_peak_flops"] for r in data["rows"]}
    cpu = data["cpu"]
    lora_bf16 = next(r for r in data["rows"] if r["method"] == "LoRA" and r["precision"] == "bf16")
    quiet_peak = load("train.json")["throughput"][0]["peaks_gflops"]["bf16"] * 1e9
    lora_flops = lora_bf16["mfu_cpu"] * lora_bf16["cpu_peak_flops"]
    note = (
        f"\n`python benchmarks/train.py --part base --threads {data['threads']}` on {data['date']}: "
        f"{first['model']}, batch {first['batch']} × {first['seq_len']} tokens (no padding), median of "
        f"{first['steps']} timed steps; matmul peak of the same run per CPU second {peaks['bf16'] / 1e9:.0f} GFLOP/s bf16, "
        f"{peaks['fp32'] / 1e9:.0f} GFLOP/s fp32; load average {data['load_average']['start']:.1f} → "
        f"{data['load_average']['end']:.1f} on {data['cores']} shared cores. LoRA bf16 reached "
        f"**{lora_bf16['mfu_cpu']:.1%} MFU in CPU time** (goal ≥30%; MFU in wall time is not shown: the peak and the "
        f"steps were measured at different moments of the other work, which made it meaningless). "
        f"Against the {quiet_peak / 1e9:.0f} GFLOP/s bf16 peak of the preset rows' quieter run above it is "
        f"{lora_flops / quiet_peak:.1%}. CPU: torch dispatches to {cpu['torch_cpu_capability']}, "
        f"AVX-512 bf16 {'advertised' if cpu['avx512_bf16'] else 'not advertised'}, AMX tiles "
        f"{'advertised' if cpu['amx_tile'] else 'not advertised'}.\n"
    )
    header = ["method", "precision", "trainable params", "tok/s (wall)", "tok per CPU s", "MFU (CPU time)"]
    return markdown(header, rows, "llrrrr") + note


@table("serve_base")
def serve_base_table() -> str:
    data = load("serve-base.json")
    rows = [
        [
            r["precision"],
            str(r["batch"]),
            f"{r['tokens']:,}",
            f"{r['seconds']:.1f}",
            f"{r['tokens_per_second']:.1f}",
            f"{r['tokens_per_cpu_second']:.1f}",
        ]
        for r in data["rows"]
    ]
    gains = ", ".join(f"{ratio:.2f}× at batch {batch}" for batch, ratio in data["bf16_speedup"].items())
    note = (
        f"\n`python benchmarks/serve.py --base --threads {data['threads']}"
        f"{'' if data['tokens_per_reply'] == 128 else ' --tokens ' + str(data['tokens_per_reply'])}` on {data['date']}: {data['model']}, "
        f"{data['tokens_per_reply']} tokens per reply (greedy, end of text ignored), lethe's engine, both precisions "
        f"in {data['rounds']} interleaved rounds (the rows sum them); bf16 against fp32 in wall time: {gains}; load average "
        f"{data['load_average']['start']:.1f} → {data['load_average']['end']:.1f} on {data['cores']} shared cores.\n"
    )
    return (
        markdown(["weights", "batch", "tokens", "seconds", "aggregate tok/s", "tok per CPU s"], rows, "lrrrrr") + note
    )


@table("base_speed")
def base_speed_table() -> str:
    data = load("base-speed.json")
    decode, scoring = data["decode_step_cpu_ms"], data["scoring"]
    cpu = scoring["cpu_seconds"]
    before = cpu["before (fp32, every position)"]
    rows = [
        ["decoding step, one reply: fp32 weights", f"{decode['fp32']:.1f} ms", "1.00×"],
        ["… bf16 weights, `F.linear`", f"{decode['bf16']:.1f} ms", f"{decode['fp32'] / decode['bf16']:.2f}×"],
        [
            "… bf16 weights, matrix-vector products (the engine)",
            f"{decode['bf16_matrix_vector']:.1f} ms",
            f"{decode['fp32'] / decode['bf16_matrix_vector']:.2f}×",
        ],
        *(
            [f"scoring {scoring['questions']} general questions: {label}", f"{value:.2f} s", f"{before / value:.2f}×"]
            for label, value in cpu.items()
        ),
    ]
    note = (
        f"\n`python benchmarks/base_speed.py --threads {data['threads']}` on {data['date']}: {data['model']}; CPU "
        f"time of this process, median of {data['rounds']} interleaved rounds; scoring covers "
        f"{scoring['tokens']:,} tokens in batches of 16. bf16 against fp32 log-probabilities: mean absolute "
        f"difference {scoring['bf16_logprob_abs_diff_mean']:.3f} nats (largest {scoring['bf16_logprob_abs_diff_max']:.2f}), "
        f"mean loss {scoring['fp32_loss']:.3f} → {scoring['bf16_loss']:.3f}, teacher-forced greedy tokens equal "
        f"{scoring['bf16_greedy_agreement']:.1%}; load average {data['load_average']['start']:.1f} → "
        f"{data['load_average']['end']:.1f} on {data['cores']} shared cores.\n"
    )
    return markdown(["what", "CPU time", "vs fp32 / before"], rows, "lrr") + note


@table("forget_base")
def forget_base_table() -> str:
    data = load("forget-base.json")
    rows = {r["label"]: r for r in data["rows"]}
    before, after = rows["before"], rows["after"]
    stages = [
        ("grad_diff request (3 LoRA steps, quick metrics, audit): wall", "grad_diff_request_seconds"),
        ("… CPU time of the process", "grad_diff_request_cpu_seconds"),
        ("… of which the audit (2 models, 5 items per split): wall", "audit_seconds"),
        ("publish (taint, erase, byte scan of the workspace): wall", "publish_seconds"),
        ("… CPU time (unchanged code: the scan)", "publish_cpu_seconds"),
    ]
    table_rows = [
        [label, f"{before[key]:.1f}", f"{after[key]:.1f}", f"{before[key] / after[key]:.2f}×"] for label, key in stages
    ]
    load_note = "; ".join(
        f"{r['label']} (code {r['code']}): load average {r['load_average']['start']:.1f} → {r['load_average']['end']:.1f}"
        for r in (before, after)
    )
    note = (
        f"\n`python benchmarks/forget_base.py time HOME --label before|after` on {after['date']}, back to back on "
        f"one prepared workspace ({after['workspace_bytes'] / 1e9:.1f} GB: the base, one LoRA fine-tune, its "
        f"checkpoint and the candidate), `--threads {after['torch_threads']}`; {load_note}, on {data['cores']} "
        "cores shared with other work, so wall times carry the load's noise and CPU times are the fairer figure.\n"
    )
    return markdown(["stage", "before (s)", "after (s)", "before / after"], table_rows, "lrrr") + note


@table("serve")
def serve_table() -> str:
    data = load("serve.json")
    paths = [
        ("engine, batch 1", data["engine_batch1"]),
        ("HTTP, 1 client", data["http_batch1"]),
        (f"HTTP, {data['http_concurrent']['clients']} concurrent streaming clients", data["http_concurrent"]),
    ]
    rows = [
        [
            label,
            f"{r['ttft_s'] * 1000:.1f} ms" if r["ttft_s"] < 0.05 else f"{r['ttft_s'] * 1000:.0f} ms",
            f"{r['decode_tok_s']:.0f}",
            f"{r.get('aggregate_tok_s', r['e2e_tok_s']):.0f}",
        ]
        for label, r in paths
    ]
    return markdown(["path", "time to first token", "decode tok/s", "aggregate tok/s"], rows, "lrrr")


@table("serve_notes")
def serve_notes() -> str:
    data = load("serve.json")
    best = max(data["concurrency_speedup_per_round"])
    return (
        f"HTTP overhead at batch 1: {data['http_overhead']:+.1%} in wall time, {data['http_cpu_overhead']:+.1%} in CPU "
        f"per token (target ≤{data['targets']['http_overhead_max']:.0%}); {data['http_concurrent']['clients']} clients "
        f"vs 1: {data['concurrency_speedup']:.2f}× (target ≥{data['targets']['concurrency_speedup_min']:.0f}×; "
        f"{best:.2f}× in the best round), at `--threads {data['config']['threads']}`.\n"
    )


@table("unlearn_notes")
def unlearn_notes() -> str:
    data = load("unlearn.json")
    baseline = data["baseline_seconds"]
    rows = data["rows"]
    last = next(r for r in rows if r["kind"] == "exact" and r.get("slices_replayed") == 1)
    retok = next((r for r in rows if "retokenize" in r["method"]), None)
    cpu = data["baseline_cpu_seconds"]
    text = (
        f"Exact replay of the last of {data['config']['slices']} slices costs **{last['cpu_seconds'] / cpu:.1%}** of "
        f"full retraining in CPU time ({last['seconds'] / baseline:.1%} in wall time, on cores shared with other "
        f"work; target ≤{data['target']['max_ratio']:.0%}), and the cost grows with the slices replayed."
    )
    if retok is not None:
        text += (
            f" With `--retokenize` every slice is replayed from scratch: {retok['cpu_seconds'] / cpu:.1%} in CPU time."
        )
    return text + "\n"


@table("unlearn")
def unlearn_table() -> str:
    data = load("unlearn.json")
    baseline = data["baseline_seconds"]
    rows = []
    for r in data["rows"]:
        slice_ = (
            "(none)" if r["kind"] == "retrain" else ("—" if r.get("forget_slice") is None else str(r["forget_slice"]))
        )
        replayed = "—" if r.get("slices_replayed") is None else str(r["slices_replayed"])
        rows.append(
            [r["method"], slice_, replayed, str(r["steps"]), f"{r['seconds']:.2f}", pct(r["seconds"] / baseline * 100)]
        )
    header = ["method", "forget set in slice", "slices replayed", "steps", "end-to-end s", "ratio"]
    return markdown(header, rows, "llrrrr")


TOFU_LABELS = {"target": "target (trained on all 40)", "retain": "retain model (the exact answer)"}


@table("tofu")
def tofu_table() -> str:
    data = load("tofu-forget10-authors40/results.json")
    rows = []
    for r in data["rows"]:
        utility = r.get("retain_utility")
        rows.append(
            [
                TOFU_LABELS.get(r["model"], r["model"]),
                num(r.get("forget_quality")),
                "~0" if utility is not None and utility < 1e-3 else num(utility),
                num(r.get("forget_rouge_l_recall")),
                num(r.get("retain_rouge_l_recall")),
                num(r.get("mia_auc_loss")),
                "" if r["role"] == "reference" else num(r.get("privleak_loss"), 2),
                "" if r.get("unlearn_seconds") is None else f"{r['unlearn_seconds']:.0f}",
            ]
        )
    header = [
        "model",
        "forget quality",
        "retain utility",
        "forget ROUGE-L",
        "retain ROUGE-L",
        "MIA AUC (loss)",
        "PrivLeak",
        "unlearn s",
    ]
    return markdown(header, rows, "lrrrrrrr")


# open-unlearning's published Llama-3.2-1B-Instruct TOFU forget10 reproduction (forget quality,
# model utility), github.com/locuslab/open-unlearning docs/results.md: what lethe's run on a
# 135M base is set beside, not a figure lethe measured.
OPEN_UNLEARNING_FORGET10 = {
    "retain": (1.0, 0.59),
    "npo": (0.02, 0.46),
    "simnpo": (2.5e-203, 0.54),
    "rmu": (3.2e-15, 0.59),
    "grad_diff": (1e-239, 0.49),
    "dpo_idk": (4.6e-12, 0.23),
}
METHOD_NAMES = {"npo": "NPO", "simnpo": "SimNPO", "rmu": "RMU", "grad_diff": "GradDiff", "dpo_idk": "IdkDPO"}
UTILITY_NUMBERS = [
    (split, metric)
    for split in ("retain", "real_authors", "world_facts")
    for metric in ("probability", "rouge_l_recall", "truth_ratio")
]


@table("tofu_base")
def tofu_base_table() -> str:
    data = load("tofu-base-smollm2/results.json")
    config = data["config"]
    rows = []
    for r in data["rows"]:
        label = {"target": "target (fine-tuned on all trained authors)", "retain": "retain model (= exact replay)"}.get(
            r["model"], METHOD_NAMES.get(r["model"], r["model"])
        )
        published = OPEN_UNLEARNING_FORGET10.get(r["model"])
        rows.append(
            [
                label,
                num(r.get("forget_quality")),
                num(r.get("model_utility")),
                *(num(r.get(f"{split}_{metric}")) for split, metric in UTILITY_NUMBERS),
                "" if published is None else (f"{published[0]:.2g}" if published[0] < 1e-3 else f"{published[0]:.2f}"),
                "" if published is None else f"{published[1]:.2f}",
            ]
        )
    header = [
        "model",
        "forget quality",
        "model utility",
        *(
            f"{split.replace('_', ' ')} {metric.replace('_l_recall', '-L').replace('_', ' ')}"
            for split, metric in UTILITY_NUMBERS
        ),
        "open-unlearning FQ",
        "open-unlearning MU",
    ]
    authors = data["authors"]
    note = (
        f"\n`lethe --threads 1 bench tofu --base {data['base_model']} --split {config['split']} --authors "
        f"{config['authors']} --epochs {config['epochs']} --batch-size {config['batch_size']} --lr {config['lr']:g} "
        f"--methods {','.join(config['methods'])} --unlearn-epochs {config['unlearn_epochs']} --unlearn-lr "
        f"{config['unlearn_lr']:g} --eval-items {config['eval_items']} --max-new-tokens {config['max_new_tokens']} "
        f"{'--robustness' if config['robustness'] else '--no-robustness'}` on {data['finished_at'][:10]}: "
        f"{len(authors['forget'])} forget author(s), {len(authors['retain'])} retain author(s), "
        f"{len(authors['never_trained'])} never trained (MIA non-members); {'LoRA rank ' + str(config['lora_r']) if config['lora'] else 'full fine-tuning'}, "
        f"{'bf16 autocast' if config['bf16'] else 'fp32'} for fine-tuning, unlearning and evaluation; "
        f"{_tofu_total(data)} ({_tofu_stage_times(data['timings'])})"
        f"{_tofu_load_note(data)}. Pretraining data of the base: {data['pretraining_data']}.\n"
    )
    return markdown(header, rows, "l" + "r" * (len(header) - 1)) + note


def _tofu_total(data: dict) -> str:
    cached = [stage["stage"] for stage in data["stages"] if stage["status"] == "cached" and stage["seconds"] > 1]
    if not cached:
        return f"{data['total_seconds']:.0f} s in all"
    computed = sum(stage["seconds"] for stage in data["stages"])
    kinds = {"train": "training", "unlearn": "unlearning", "evaluate": "evaluation"}
    reused = " and ".join(dict.fromkeys(kinds.get(name.split()[0], name) for name in cached))
    return (
        f"{computed:.0f} s of stages in all, of which this invocation ran {data['total_seconds']:.0f} s: its "
        f"{reused} came from the stage cache (an earlier invocation with the same configuration and code but "
        "fewer evaluation items computed them)"
    )


def _tofu_stage_times(timings: dict[str, float]) -> str:
    unlearn = [v for k, v in timings.items() if k.startswith("unlearn ")]
    evaluate = [v for k, v in timings.items() if k.startswith("evaluate ")]
    parts = [f"{k} {v:.0f} s" for k, v in timings.items() if k.startswith("train ")]
    if unlearn:
        parts.append(f"unlearning {min(unlearn):.0f}–{max(unlearn):.0f} s per method")
    if evaluate:
        parts.append(f"evaluation {min(evaluate):.0f}–{max(evaluate):.0f} s per model")
    return ", ".join(parts)


def _tofu_load_note(data: dict) -> str:
    load = data.get("load_average")
    threads = data.get("torch_threads")
    if not load:
        return " on 2 shared cores"
    return (
        f", {threads} torch thread{'s' if threads != 1 else ''}, on {data.get('cores', 2)} cores shared with other "
        f"developers' work (load average {load['start']:.1f} at the start, {load['end']:.1f} at the end)"
    )


@table("synth")
def synth_table() -> str:
    data = load("synth-default/results.json")
    rows = [
        [
            r["model"] + (" (the reference)" if r["role"] == "reference" else ""),
            num(r.get("forget_quality")),
            num(r.get("retain_utility")),
            num(r.get("forget_exact_match")),
            num(r.get("retain_exact_match")),
            num(r.get("mia_auc_loss")),
        ]
        for r in data["rows"]
    ]
    header = ["model", "forget quality vs exact", "retain utility", "forget EM", "retain EM", "MIA AUC (loss)"]
    timings = data["timings"]
    note = (
        f"\n{data['total_seconds']:.0f} s in all, of which training {timings['train target']:.0f} s and exact replay "
        f"{timings['exact replay']:.0f} s.\n"
    )
    return markdown(header, rows, "lrrrrr") + note


TUNED_RUNS = (
    ("synth", "synth-tuned/results.json"),
    ("synth, mean of draws", "synth-tuned-mean/results.json"),
    ("synth, whp (name swap)", "synth-tuned-whp/results.json"),
    ("synth, whp (swap and boost)", "synth-tuned-whp-boost/results.json"),
    ("synth, worst of 3 draws, SAM searched", "synth-tuned-sam/results.json"),
    ("TOFU forget10, 40 authors", "tofu-forget10-authors40-tuned/results.json"),
    ("TOFU forget10 on the real base (smollm2), 4 authors", "tofu-base-smollm2-tuned/results.json"),
)
CHECK_NAMES = {
    "forget_quality": "forget quality < 0.9",
    "utility": "utility < 97 %",
    "time": "time > 10 %",
    "robustness": "attacks outside exact's range",
}


def frac(value: float | None) -> str:
    return "" if value is None else pct(100 * value)


def probe_gap(goal: dict, tuning: dict) -> str:
    """The largest attack gap on the forget set; without the bench's robustness suite, the
    tuner's own finalist attack on the calibration, marked as such."""
    if goal["probe_gap_max"] is not None:
        return minus(f"{goal['probe_gap_max']:+.3f}")
    verdict = ((tuning["studies"].get(goal["method"]) or {}).get("best") or {}).get("robustness")
    if verdict and verdict.get("gap"):
        return minus(f"{max(verdict['gap'].values()):+.3f}") + " (calibration)"
    return ""


@table("tuning_goal")
def tuning_goal_table() -> str:
    rows, notes = [], []
    for name, relative in TUNED_RUNS:
        if not (RESULTS / relative).exists():
            continue
        data = load(relative)
        tuning = data["tuning"]
        for goal in tuning["goal"]:
            failed = [CHECK_NAMES[k] for k, ok in goal["checks"].items() if not ok]
            rows.append(
                [
                    name,
                    goal["method"],
                    f"{goal['trials']} ({goal['pruned']} pruned"
                    + (f", {goal['slow']} stopped at the time ceiling)" if goal.get("slow") else ")"),
                    num(goal.get("calibration_forget_quality")),
                    f"{num(goal['forget_quality'])} ({num(goal['untuned_forget_quality'])})",
                    f"{frac(goal['utility_fraction'])} ({frac(goal['untuned_utility_fraction'])})",
                    frac(goal["time_fraction"]),
                    f"{goal['tuning_seconds']:.0f}",
                    f"{goal['amortised_after']:.1f}" if goal["amortised_after"] is not None else "never",
                    probe_gap(goal, tuning),
                    "yes" if goal["goal_met"] else "no: " + ", ".join(failed),
                ]
            )
        calibration = tuning["calibration"]
        draws = calibration.get("draws")
        if draws:
            what = "; ".join(
                f"draw {i + 1}: {', '.join(d['subjects'])} ({d['documents']} documents, {d['qa_items']} QA items)"
                for i, d in enumerate(draws)
            )
            objective = tuning["settings"].get("objective", "pooled")
            scored = {
                "pooled": "pooled in every trial",
                "mean": "every trial scored by the mean of the draws' own forget quality",
                "worst": "every trial scored by the worst draw's forget quality",
            }[objective]
            what = f"{len(draws)} calibration draw{'s' if len(draws) > 1 else ''}, {scored} ({what})"
            if calibration.get("matched_to_request"):
                request = calibration["request"]
                what += (
                    f", each matched in kind and size to the request ({', '.join(request)}: "
                    f"{sum(request.values())} documents)"
                )
        else:
            what = (
                f"calibration {', '.join(calibration['subjects'])} ({calibration['documents']} documents; one draw, "
                "drawn uniformly: the tuner before matched draws)"
            )
        if draws and data["benchmark"] == "tofu":
            timings = data["timings"]
            retrains = " and ".join(f"{d['exact_seconds']:.0f}" for d in draws)
            what += (
                f"; {data['total_seconds']:.0f} s of stages, of which training the target {timings['train target']:.0f} s, "
                f"the retain model {timings['train retain']:.0f} s, the calibration retrainings {retrains} s"
            )
        elif draws:
            timings = data["timings"]
            replays = " and ".join(f"{d['exact_seconds']:.0f}" for d in draws)
            cached = {st["stage"] for st in data["stages"] if st["status"] == "cached"}
            if {"train target", "exact replay", "calibration exact replay"} <= cached:
                what += (
                    f"; {data['total_seconds']:.0f} s in all, the target, its exact replay and the calibration "
                    "replays reused from the run above (the same cache)"
                )
            else:
                what += (
                    f"; {data['total_seconds']:.0f} s in all, of which training the target "
                    f"{timings['train target']:.0f} s, its exact replay {timings['exact replay']:.0f} s, "
                    f"the calibration replays {replays} s"
                )
        ceiling = tuning["settings"].get("time_fraction")
        notes.append(
            f"{name}: {what}; disjoint from the forget set: "
            f"{'yes' if calibration['disjoint_from_forget_set'] else 'no'}; "
            f"utility is {'model utility' if tuning['utility_key'] == 'model_utility' else 'retain utility'}; "
            + (
                f"`{data['config'].get('tune_trials')}` trials at most, {data['config'].get('tune_budget'):.0f} s per method"
                if data["config"].get("tune_trials")
                else "the studies were resumed from an earlier invocation, and this one added no trials"
            )
            + (f", trials over {ceiling:.0%} of the calibration's exact replay time infeasible." if ceiling else ".")
        )
    header = [
        "benchmark",
        "method",
        "trials",
        "forget quality on calibration",
        "forget quality vs exact (untuned)",
        "utility / exact's (untuned)",
        "time / exact replay",
        "tuning cost s",
        "requests to amortise",
        "relearn/quant gap vs exact",
        "goal met",
    ]
    return markdown(header, rows, "llrrrrrrrrl") + "\n" + "\n".join(f"- {n}" for n in notes) + "\n"


@table("tuning_transfer")
def tuning_transfer_table() -> str:
    """`benchmarks/tuning_transfer.py`: the best calibration trials re-run on each draw and on
    the real forget set (a diagnostic the tuner never sees)."""
    data = load("synth-tuned/transfer.json")
    rows, notes = [], []
    for method, part in data["methods"].items():
        for trial in part["trials"]:
            rows.append(
                [
                    method,
                    f"{trial['trial']}"
                    + (" (chosen)" if trial["chosen"] else "")
                    + (" (untuned)" if trial["trial"] == 0 else ""),
                    num(trial["pooled_calibration_forget_quality"]),
                    num(trial["draw 1"]["forget_quality"]),
                    num(trial["draw 2"]["forget_quality"]),
                    num(trial["forget set"]["forget_quality"]),
                    frac(trial["forget set"]["utility_fraction"]),
                ]
            )
        calibration_vs_real = minus(f"{part['spearman_calibration_vs_forget_set']:+.2f}")
        draw_vs_draw = minus(f"{part['spearman_draw1_vs_draw2']:+.2f}")
        notes.append(
            f"{method}: rank correlation (Spearman) calibration vs forget set {calibration_vs_real}, "
            f"draw 1 vs draw 2 {draw_vs_draw}"
        )
    header = [
        "method",
        "trial",
        "pooled calibration FQ",
        "draw 1 FQ",
        "draw 2 FQ",
        "forget set FQ",
        "forget set utility / exact's",
    ]
    return markdown(header, rows, "llrrrrr") + "\n" + "; ".join(notes) + f" ({data['seconds']:.0f} s, `--threads 1`).\n"


DEMO_ROWS = (
    ("forget token accuracy", "forget_token_accuracy"),
    ("retain token accuracy", "retain_token_accuracy"),
    ("forget exact match", "forget_exact_match"),
    ("retain exact match", "retain_exact_match"),
    ("forget MIA AUC (loss, vs never-trained entities)", "forget_mia_auc_loss"),
    ("forget quality vs the exact model", "forget_quality_vs_exact"),
)


@table("demo")
def demo_table() -> str:
    data = load("demo.json")
    labels = list(data["summary"])
    names = {"before": "before", "exact": "exact replay"}
    rows = [
        [label, *[num(data["summary"][model].get(key)) for model in labels]]
        for label, key in DEMO_ROWS
        if any(key in data["summary"][model] for model in labels)
    ]
    header = ["metric", *[names.get(model, model) for model in labels]]
    config = data["config"]
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in data["timings"].items())
    note = (
        f"\n`lethe --threads {data['torch_threads']} demo` on {data['date']}: {config['entities']} entities, "
        f"`{config['preset']}` model, {config['slices']} slices + a weekly update, {config['epochs']} epochs; "
        f"{data['total_seconds']:.0f} s in all. Steps: {steps}.\n"
    )
    return markdown(header, rows, "l" + "r" * len(labels)) + note


DEMO_REAL_ROWS = (
    ("forget token accuracy", "forget_token_accuracy"),
    ("forget loss", "forget_loss"),
    ("retain token accuracy", "retain_token_accuracy"),
    ("general token accuracy (fixed questions + TOFU real authors, world facts)", "general_token_accuracy"),
    ("general loss", "general_loss"),
    ("forget quality vs the exact model", "forget_quality_vs_exact"),
)


def _load_note(data: dict) -> str:
    load = data.get("load_average")
    if not load:
        return " shared with other work"
    return f", load average {load[0]:.1f} → {load[-1]:.1f} (its own threads included)"


@table("demo_real")
def demo_real_table() -> str:
    data = load("demo-real.json")
    labels = list(data["summary"])
    names = {"before": "before", "exact": "exact replay"}
    rows = [
        [label, *[num(data["summary"][model].get(key)) for model in labels]]
        for label, key in DEMO_REAL_ROWS
        if any(key in data["summary"][model] for model in labels)
    ]
    header = ["metric", *[names.get(model, model) for model in labels]]
    config = data["config"]
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in data["timings"].items())
    answers = "; ".join(
        f"“{a['question']}” → before “{a['before']}”, exact “{a['exact']}”, {config['fast_method']} "
        f"“{a[config['fast_method']]}”"
        for a in data.get("answers", [])
    )
    minutes = data["total_seconds"] / 60
    note = (
        f"\n`make demo-real` (`lethe demo --base {config['base']}`, {data['torch_threads']} torch thread{'s' if data['torch_threads'] != 1 else ''} chosen by "
        f"the default policy) on {data['date']}: "
        f"{config['entities']} entities, {config['qa_per_entity']} QA pairs each, LoRA rank {config['lora_r']} in "
        f"{config['slices']} slices + a weekly update, {config['epochs']} epochs; {config['forget_entities']} entities "
        f"forgotten exactly and with {config['fast_method']} ({config['fast_steps']} steps, LoRA). "
        f"**{data['total_seconds']:.0f} s in all ({minutes:.1f} minutes; target under 15)** on {data['cores']} cores"
        f"{_load_note(data)}. Steps: {steps}.\n\nAnswers: {answers}\n"
    )
    return markdown(header, rows, "l" + "r" * len(labels)) + note


def _threads(name: str) -> str:
    data = load(name)

    def seconds(value: float | None) -> str:
        return "not measured" if value is None else f"{value:.1f}"

    rows = [
        [
            r["policy"],
            seconds(r["quiet_s"]),
            seconds(r["contended_s"]),
            "" if r["contended_over_quiet"] is None else f"{r['contended_over_quiet']:.2f}×",
            pct(r["quiet_vs_torch_default"] * 100),
            {True: "yes", False: "no", None: "(baseline)"}[r["meets_target"]],
        ]
        for r in data["rows"]
    ]
    header = [
        "policy",
        "quiet s",
        "beside a busy process s",
        "contended / quiet",
        "quiet vs torch's default",
        "target met",
    ]
    notes = [f"`{data['command']}`, {data['rounds']} round(s) on {data['date']}, {data['cores']} cores."]
    notes += [f"{r['policy']}: {r['note']}." for r in data["rows"] if r.get("note")]
    return markdown(header, rows, "lrrrrl") + "\n" + " ".join(notes) + "\n"


@table("threads")
def threads_table() -> str:
    return _threads("threads.json")


@table("threads_full")
def threads_full_table() -> str:
    return _threads("threads-full.json")


def render(text: str) -> tuple[str, list[str]]:
    """README text with every block regenerated, and the names of the blocks that changed."""
    changed = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise SystemExit(f"README block {name!r} has no generator in {Path(__file__).name}")
        body = TABLES[name]()
        if body != match.group("body"):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, text), changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if README.md's tables are stale.")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args()
    text = args.readme.read_text(encoding="utf-8")
    new, changed = render(text)
    if args.check:
        if changed:
            print(f"README figures differ from benchmarks/results/ in: {', '.join(changed)}", file=sys.stderr)
            sys.exit(1)
        print("README figures match benchmarks/results/")
        return
    args.readme.write_text(new, encoding="utf-8")
    print(f"regenerated {', '.join(changed) or 'nothing (already current)'}")


if __name__ == "__main__":
    main()
