"""The ``handprop`` command: ``handprop walkthrough [--dtype D] [--svg FILE] [--markdown FILE]``,
``handprop exercise list | start NAME [DIR] | check NAME FILE`` and ``handprop bench``."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .worked_example import SOURCE

MARKDOWN_HEADER = (
    f"The worked example of [{SOURCE[0]}]({SOURCE[1]}) (pooya.io), every value computed by "
    "handprop. Where the document's own numbers differ, `handprop walkthrough` says why.\n\n"
)


def main(argv: list[str] | None = None) -> int:
    """``handprop COMMAND ...``; returns the exit status."""
    try:
        return _run(argv)
    except BrokenPipeError:  # `handprop walkthrough | head`: the reader left, not an error
        # Python would report the broken pipe again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="handprop", description="Backpropagation by hand in NumPy, checked against torch."
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"handprop {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    walk = commands.add_parser(
        "walkthrough",
        help="the worked example, forward and backward, step by step",
        description=f'The worked example of "{SOURCE[0]}" ({SOURCE[1]}), forward and '
        "backward by hand, beside the document's numbers and torch's.",
    )
    walk.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="the precision to compute in (default float32, like torch)",
    )
    walk.add_argument("--svg", metavar="FILE", help="also draw the computational graph as SVG")
    walk.add_argument("--markdown", metavar="FILE", help="also write the LaTeX derivation")
    walk.add_argument(
        "--html", metavar="FILE", help="also write the step-through page (one file, offline)"
    )
    walk.add_argument("--no-torch", action="store_true", help="do not compare with torch")
    walk.add_argument(
        "--full",
        action="store_true",
        help="print every value in full (default: 4 significant digits, beside the "
        "document's 4 decimals)",
    )
    _exercise_parser(commands)
    bench = commands.add_parser(
        "bench",
        help="the speed table of docs/performance.md, measured on this machine",
        description="One training step of each network of docs/performance.md, handprop "
        "against torch eager (where torch is installed) and against the limit no "
        "implementation can go under; in under a minute, with a progress bar.",
    )
    bench.add_argument(
        "--full", action="store_true", help="21 longer repeats instead of 5 (a few minutes)"
    )
    if not (sys.argv[1:] if argv is None else argv):  # a bare `handprop`: the help, not an error
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.command == "exercise":
        return _exercise(args)
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(full=args.full)

    from .explain.walkthrough import walkthrough

    t = walkthrough(
        sys.stdout, dtype=np.dtype(args.dtype), use_torch=not args.no_torch, full=args.full
    )
    if args.svg:
        t.to_svg(args.svg)
        print(f"\nwrote the computational graph to {args.svg}")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(MARKDOWN_HEADER + t.to_markdown())
        print(f"wrote the derivation to {args.markdown}")
    if args.html:
        t.to_html(args.html)
        print(f"wrote the step-through page to {args.html}")
    return 0


def _exercise_parser(commands) -> None:
    exercise = commands.add_parser(
        "exercise",
        help="write a backward yourself and have it graded",
        description="Exercises graded offline: a layer whose forward is written and whose "
        "backward is yours to write, graded against handprop's own.",
    )
    actions = exercise.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="the exercises")
    start = actions.add_parser("start", help="write NAME.py, the exercise's starting file")
    start.add_argument("name")
    start.add_argument("folder", nargs="?", default=".", help="where (default: here)")
    check = actions.add_parser("check", help="grade FILE on exercise NAME")
    check.add_argument("name")
    check.add_argument("file")


def _exercise(args) -> int:
    from .exercises import EXERCISES, grade, load_class, report_text, start

    try:
        if args.action == "list":
            width = 15  # most names fit; a longer one pushes its own line only
            for name, exercise in EXERCISES.items():
                print(f"{name:<{width}}  {exercise.class_name}: {exercise.summary}")
            return 0
        if args.action == "start":
            path = start(args.name, args.folder)
            print(f"wrote {path}: write its backward, then run")
            print(f"  handprop exercise check {args.name} {path}")
            return 0
        cls = load_class(args.name, args.file)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"handprop exercise: {error}", file=sys.stderr)
        return 2
    results = grade(args.name, cls)
    print(report_text(args.name, results))
    return 0 if all(r.passed for r in results) else 1
