"""rnnlab's training steps on 4 KiB pages against transparent huge pages, taking turns.

    python scripts/bench_hugepages.py                         # BiLSTM, 3 turns of 60 steps each
    python scripts/bench_hugepages.py --model gru --turns 5 --steps 40

The entry points (and bench.py) set THP_MEM_ALLOC_ENABLE=1 unless the environment already sets
it (`rnnlab.runtime.use_huge_pages`), and torch reads it at its first CPU allocation, so each run
is a fresh process: bench.py's rnnlab loop
(`rnnlab.train.train` on the composed train.py config, Lightning Trainer included) on the same
slice of reviews, with THP_MEM_ALLOC_ENABLE=0 and =1 in turn. Each run prints its tokens/s over
the timed steps, the minor page faults and kernel CPU seconds of the whole run, and how much of
the process was on huge pages at its end; then the medians of each side and their ratio. The
last line is `hugepage_speedup=X small_pages_tokens_per_s=N huge_pages_tokens_per_s=N`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDES = {"0": "4 KiB pages", "1": "huge pages"}
sys.path.insert(0, str(ROOT / "scripts"))  # bench.py, whose rnnlab loop this times


def child(args: argparse.Namespace) -> None:
    """One run of rnnlab's loop in this process; prints one JSON line."""
    import logging
    import warnings

    import bench

    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory(prefix="rnnlab-thp-") as tmp:
        run = bench.rnnlab_train(
            args.model, args.data, args.reviews, args.steps, Path(args.cache), Path(tmp), [], "cpu"
        )
    after = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/smaps_rollup") as f:
        huge_kb = next((int(line.split()[1]) for line in f if line.startswith("AnonHuge")), 0)
    print(
        json.dumps(
            {
                "tokens_per_s": run["tokens"] / run["seconds"],
                "minor_faults": after.ru_minflt - before.ru_minflt,
                "kernel_s": after.ru_stime - before.ru_stime,
                "user_s": after.ru_utime - before.ru_utime,
                "huge_mb": huge_kb / 1024,
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="bilstm", help="rnn, lstm, gru or bilstm")
    parser.add_argument("--reviews", type=int, default=4000, help="labeled reviews in the slice")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps in each run")
    parser.add_argument("--turns", type=int, default=3, help="runs on each side, alternating")
    parser.add_argument(
        "--data", default=str(ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz")
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)  # the runs' shared token cache
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if not Path(args.data).exists():
        sys.exit(f"{args.data} does not exist: pass --data /path/to/aclImdb_v1.tar.gz")
    if not Path("/proc/self/smaps_rollup").exists():
        sys.exit("this compares Linux page sizes: /proc/self/smaps_rollup is not here")
    try:
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        mode = "unknown"
    print(
        f"{args.model}, {args.reviews} reviews, {args.steps} steps, transparent huge pages: {mode}"
    )
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    cache = tempfile.TemporaryDirectory(prefix="rnnlab-thp-cache-")
    import bench

    # tokenized once, before the runs, so that none of them counts it in its kernel and user time
    bench.rnnlab_prepare(args.data, Path(cache.name), Path(cache.name) / "prepare")
    command = [sys.executable, __file__, "--child", "--cache", cache.name, *argv]
    for turn in range(args.turns):
        for side, name in SIDES.items():
            env = {**os.environ, "THP_MEM_ALLOC_ENABLE": side}
            done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
            if done.returncode:
                sys.exit(f"the {name} run failed:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            runs[side].append(r)
            print(
                f"turn {turn + 1} {name:<12} {r['tokens_per_s']:>8.0f} tokens/s  "
                f"{r['minor_faults']:>9} minor faults  kernel {r['kernel_s']:.1f} s, "
                f"user {r['user_s']:.1f} s  on huge pages at the end: {r['huge_mb']:.0f} MB",
                flush=True,
            )
    cache.cleanup()
    small, huge = (statistics.median(r["tokens_per_s"] for r in runs[s]) for s in SIDES)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"hugepage_speedup={huge / small:.3f} small_pages_tokens_per_s={small:.0f} "
        f"huge_pages_tokens_per_s={huge:.0f}"
    )


if __name__ == "__main__":
    main()
