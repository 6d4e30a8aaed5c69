"""Long reviews against short ones, with and without the subnormal flush: a BiLSTM training step
whose loss reads only the final states, side by side in one process.

    python scripts/bench_subnormal.py                      # 120 and 600 steps, 3 turns of 5
    python scripts/bench_subnormal.py --long 1000 --turns 5

The gradient that flows back from the final state alone shrinks at every step; after a few
hundred steps it is subnormal (below 1.2e-38), and on CPUs that handle subnormals in microcode
(Intel Xeons) every operation on it is slow. rnnlab's encoder (`RecurrentEncoder('lstm', 128,
128, bidirectional=True)`, row shards on every core) takes forward + backward steps on batches of
64 random reviews of `--short` and `--long` steps, with `rnnlab.runtime.flush_subnormals` off and
on in turn. A step's cost should grow with its length, no more: tokens/s of the long reviews
over the short ones is the ratio to watch. The process runs with train.py's allocator setting
(huge pages, `rnnlab.runtime.use_huge_pages`): on 4 KiB pages a 600-step step faults its ~900 MB
of fresh buffers in page by page, which alone costs the long reviews about a third of their
speed (THP_MEM_ALLOC_ENABLE=0 in the environment shows it; the table counts the minor page
faults of a step). The last line is
`long_vs_short_flush=X long_vs_short_no_flush=Y flush_speedup_long=Z`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

# huge pages first, as train.py does: torch reads the setting at its first CPU allocation
from rnnlab.runtime import (  # isort: skip
    HUGE_PAGES_ENV,
    cpu_description,
    flush_subnormals,
    use_huge_pages,
)

use_huge_pages()

import torch  # noqa: E402

from rnnlab.models.recurrent import RecurrentEncoder  # noqa: E402

BATCH, EMB, HIDDEN = 64, 128, 128


def tokens_per_s(encoder: RecurrentEncoder, steps: int, repeats: int) -> tuple[float, float]:
    """Median tokens/s and minor page faults of forward + backward steps on (BATCH, steps, EMB)
    inputs, loss on the final states only."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, steps, EMB, generator=generator)
    lengths = torch.full((BATCH,), steps)
    rates, faults = [], []
    for i in range(repeats + 1):  # the first is a warm-up
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        _, final = encoder(x, lengths)
        final.sum().backward()
        seconds = time.perf_counter() - start
        if i:
            rates.append(BATCH * steps / seconds)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
    encoder.zero_grad(set_to_none=True)
    return statistics.median(rates), statistics.median(faults)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", type=int, default=120, help="steps of the short reviews")
    parser.add_argument("--long", type=int, default=600, help="steps of the long reviews")
    parser.add_argument("--turns", type=int, default=3, help="times each side runs, in turns")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per run (median)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    encoder = RecurrentEncoder("lstm", EMB, HIDDEN, bidirectional=True)
    model, units = cpu_description()
    print(
        f"BiLSTM {EMB}/{HIDDEN}, batch {BATCH}, {torch.get_num_threads()} threads, "
        f"{model} ({', '.join(units) or 'no AVX2'}), torch {torch.__version__}, "
        f"{HUGE_PAGES_ENV}={os.environ[HUGE_PAGES_ENV]}",
        flush=True,
    )
    results: dict[tuple[bool, int], list[float]] = {}
    faults: dict[tuple[bool, int], list[float]] = {}
    for _ in range(args.turns):
        for steps in (args.short, args.long):
            for flush in (False, True):  # side by side: the machine's drift hits both alike
                if not flush_subnormals(flush):
                    raise SystemExit(
                        "this CPU cannot flush subnormals (no DAZ): nothing to compare"
                    )
                rate, step_faults = tokens_per_s(encoder, steps, args.repeats)
                results.setdefault((flush, steps), []).append(rate)
                faults.setdefault((flush, steps), []).append(step_faults)
    flush_subnormals(False)

    print(
        f"\n{'flush':<8}{'steps':>7}{'tokens/s (median of turns)':>29}"
        f"{'page faults a step':>21}   tokens/s per turn"
    )
    for (flush, steps), rates in sorted(results.items()):
        per_turn = ", ".join(f"{r:.0f}" for r in rates)
        step_faults = statistics.median(faults[flush, steps])
        print(
            f"{'on' if flush else 'off':<8}{steps:>7}{statistics.median(rates):>29.0f}"
            f"{step_faults:>21.0f}   {per_turn}"
        )
    rate = {key: statistics.median(rates) for key, rates in results.items()}
    on = rate[True, args.long] / rate[True, args.short]
    off = rate[False, args.long] / rate[False, args.short]
    gain = rate[True, args.long] / rate[False, args.long]
    print(
        f"\nlong_vs_short_flush={on:.2f} long_vs_short_no_flush={off:.2f} flush_speedup_long={gain:.2f}"
    )


if __name__ == "__main__":
    main()
