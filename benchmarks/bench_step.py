"""Time one full training step of the multi-layer perceptrons of docs/performance.md,
handprop against torch eager (CPU) and against the limit, float32.

What is timed, and what the limit counts (the bare matrix products and the optimizer's
compulsory memory traffic), is said once, in ``handprop.bench`` (``handprop bench`` prints
the same table quickly); this script runs it with more and longer repeats.

Usage:  python benchmarks/bench_step.py [--quick] [--markdown]

Not part of the test suite: speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse

from handprop import bench

CASES = [case for case in bench.CASES if isinstance(case[1], list)]  # the perceptrons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 short repeats instead of 21")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    torch = bench._torch()
    print(f"# {bench.machine(torch)}")
    rows = bench.run(quick=args.quick, torch=torch, progress=bench.progress_bar, cases=CASES)
    if args.markdown:
        print(bench.table(rows))
        return
    for r in rows:
        print(
            f"{r['network']:<24} batch {r['batch']:<4} {r['optimizer']:<5} handprop "
            f"{r['handprop_us']:>10.1f} us  torch {bench._number(r['torch_us']):>10} us  "
            f"limit {r['limit_us']:>10.1f} us  handprop/torch {bench._number(r['vs_torch'], 2)}"
            f"  handprop/limit {r['vs_limit']:5.2f}  peak {r['peak_mib']:7.2f} MiB  "
            f"({r['verdict']})"
        )


if __name__ == "__main__":
    main()
