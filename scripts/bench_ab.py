#!/usr/bin/env python3
"""Side-by-side timing of two lc-bench builds (A = before a change, B = after).

    scripts/bench_ab.py OLD/lc-bench NEW/lc-bench [--rounds 5] [--shapes vit,encoder,gpt,mixer]

Runs the two binaries in alternation (A, B, A, B, ...) on the same machine, so drift in
clock speed or load hits both alike, and prints for every shape, thread count and
workload the median time of each and the ratio B/A. PyTorch is the same on both sides
of a `make bench` ratio, so B/A is how the ours/PyTorch ratio moves.
"""
import argparse
import json
import statistics
import subprocess
import sys


def run(binary, mode, shape, threads, steps):
    out = subprocess.run(
        [binary, mode, shape, "--threads", str(threads), "--steps", str(steps)],
        check=True, capture_output=True, text=True).stdout
    record = json.loads(out.strip().splitlines()[-1])
    if mode == "--train-only":
        return {"train step": statistics.median(record["step_ms"])}
    times = {}
    for r in record["runs"]:
        if r["model"] == 0:  # the uncollapsed model
            times[f"infer batch {r['batch']}"] = statistics.median(r["ms"])
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default="vit,encoder,gpt,mixer")
    ap.add_argument("--train-steps", type=int, default=30, help="timed training steps per run (10 is noisy at 2 threads)")
    args = ap.parse_args()
    samples = {}  # (shape, threads, workload) -> {"a": [...], "b": [...]}
    for r in range(args.rounds):
        for shape in args.shapes.split(","):
            for threads in (1, 2):
                for mode, steps in (("--train-only", args.train_steps), ("--infer-only", 3)):
                    for side, binary in (("a", args.a), ("b", args.b)) if r % 2 == 0 else (("b", args.b), ("a", args.a)):
                        for workload, ms in run(binary, mode, shape, threads, steps).items():
                            samples.setdefault((shape, threads, workload), {"a": [], "b": []})[side].append(ms)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"{'shape':8} {'thr':>3} {'workload':16} {'A ms':>9} {'B ms':>9} {'B/A':>6}")
    worst = 0.0
    for (shape, threads, workload), s in samples.items():
        a, b = statistics.median(s["a"]), statistics.median(s["b"])
        worst = max(worst, b / a)
        print(f"{shape:8} {threads:>3} {workload:16} {a:9.3f} {b:9.3f} {b / a:6.3f}")
    print(f"largest B/A: {worst:.3f}")


if __name__ == "__main__":
    main()
