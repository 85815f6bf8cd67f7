"""Command line: ``python -m ember demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m ember", description="Ember XCS")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a pipeline plainly and under @jit")
    demo.add_argument("--width", type=int, default=8, help="drafts per question (default 8)")
    demo.add_argument(
        "--latency", type=float, default=0.1, help="seconds per simulated call (default 0.1)"
    )
    args = parser.parse_args(argv)
    if args.width < 1 or args.latency < 0:
        parser.error("--width must be at least 1 and --latency at least 0")
    from ember import _demo

    return _demo.main(width=args.width, latency=args.latency)


if __name__ == "__main__":
    sys.exit(main())
