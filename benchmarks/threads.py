"""Thread defaults under contention: `lethe demo --quick`, quiet and beside one busy process.

For each thread policy the quick demo runs twice in a row — once as it is ("quiet") and once
while a competing `python -c 'while True: pass'` holds a core ("contended") — so that whatever
else loads this shared machine hits both runs of a pair alike; the figures are the ratio of the
pair and each policy's quiet time against torch's own default measured in the same round. The
target: contended within 2x of quiet, without losing more than 10% quiet against torch's default.

Policies (LETHE_THREAD_POLICY, see `lethe/threads.py`): `torch` (one spinning thread per core:
torch's default), `passive` (the same threads, idle ones sleep: OMP_WAIT_POLICY=PASSIVE),
`free` (threads = cores free right now), `free-passive` (both: lethe's default), and `--threads 1`
and `interop 1` (torch.set_num_interop_threads(1) on top of the default) for comparison.

    .venv/bin/python benchmarks/threads.py [--rounds 1] [--only torch,free-passive] [--full]

Prints a table and writes benchmarks/results/threads.json (threads-full.json with --full: the
whole demo, `make demo`'s job, instead of the quick one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "threads.json"
BUSY = "while True: pass"
CLI = "import sys; from lethe.cli import main; sys.argv = ['lethe', *sys.argv[1:]]; main()"
INTEROP_CLI = "import torch; torch.set_num_interop_threads(1); " + CLI

# name -> (extra environment, extra lethe options, python -c program)
POLICIES: dict[str, tuple[dict[str, str], list[str], str]] = {
    "torch": ({"LETHE_THREAD_POLICY": "torch"}, [], CLI),
    "passive": ({"LETHE_THREAD_POLICY": "passive"}, [], CLI),
    "free": ({"LETHE_THREAD_POLICY": "free"}, [], CLI),
    "free-passive": ({"LETHE_THREAD_POLICY": "free-passive"}, [], CLI),
    "threads 1": ({}, ["--threads", "1"], CLI),
    "interop 1": ({"LETHE_THREAD_POLICY": "free-passive"}, [], INTEROP_CLI),
}


def run_demo(name: str, contended: bool, quick: bool = True) -> float:
    extra_env, options, program = POLICIES[name]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LETHE_THREADS")}
    env.update({"PYTHONPATH": str(ROOT / "src"), **extra_env})
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if contended else None
    try:
        if busy is not None:
            time.sleep(1.0)  # the competitor is running before lethe decides its threads
        with tempfile.TemporaryDirectory(prefix="lethe-threads-") as tmp:
            command = [
                sys.executable,
                "-c",
                program,
                "--home",
                str(Path(tmp) / "demo"),
                *options,
                "demo",
                *(["--quick"] if quick else []),
            ]
            started = time.perf_counter()
            proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    if proc.returncode != 0:
        raise SystemExit(f"{name} ({'contended' if contended else 'quiet'}) failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", default=",".join(POLICIES), help="Comma-separated policies to measure.")
    parser.add_argument("--full", action="store_true", help="The whole demo (`make demo`'s job), not --quick.")
    parser.add_argument(
        "--quiet-only",
        default="",
        help="Comma-separated policies measured quiet only (e.g. torch with --full: its contended run takes ~45 min).",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if "torch" not in names:
        names.insert(0, "torch")  # the baseline every ratio is taken against
    quiet_only = {n.strip() for n in args.quiet_only.split(",") if n.strip()}
    samples: dict[str, list[dict]] = {n: [] for n in names}
    for round_index in range(args.rounds):
        for name in names:
            quiet = run_demo(name, contended=False, quick=not args.full)
            contended = None if name in quiet_only else run_demo(name, contended=True, quick=not args.full)
            samples[name].append(
                {
                    "round": round_index,
                    "quiet_s": round(quiet, 1),
                    "contended_s": None if contended is None else round(contended, 1),
                }
            )
            shown = "not measured" if contended is None else f"{contended:6.1f}s"
            print(f"round {round_index} {name:>13}: quiet {quiet:6.1f}s  contended {shown}", flush=True)
    rows = []
    baseline = sum(s["quiet_s"] for s in samples["torch"]) / len(samples["torch"])
    for name in names:
        quiet = sum(s["quiet_s"] for s in samples[name]) / len(samples[name])
        measured = [s["contended_s"] for s in samples[name] if s["contended_s"] is not None]
        contended = sum(measured) / len(measured) if measured else None
        ratio = None if contended is None else contended / quiet
        rows.append(
            {
                "policy": name,
                "quiet_s": round(quiet, 1),
                "contended_s": None if contended is None else round(contended, 1),
                "contended_over_quiet": None if ratio is None else round(ratio, 2),
                "quiet_vs_torch_default": round(quiet / baseline - 1, 3),
                "meets_target": None if ratio is None else ratio <= 2.0 and quiet / baseline - 1 <= 0.10,
            }
        )
    result = {
        "benchmark": "threads",
        "command": "lethe demo" if args.full else "lethe demo --quick",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "rounds": args.rounds,
        "rows": rows,
        "samples": samples,
    }
    results = RESULTS.with_name("threads-full.json") if args.full else RESULTS
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| policy | quiet s | contended s | contended / quiet | quiet vs torch default |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        contended = "—" if row["contended_s"] is None else f"{row['contended_s']:.1f}"
        ratio = "—" if row["contended_over_quiet"] is None else f"{row['contended_over_quiet']:.2f}x"
        print(
            f"| {row['policy']} | {row['quiet_s']:.1f} | {contended} | {ratio} | {row['quiet_vs_torch_default']:+.1%} |"
        )
    print(f"\nwrote {results}")


if __name__ == "__main__":
    main()
