"""Command line: ``python -m ember demo`` and ``python -m ember serve`` (also ``ember ...``).

Without a command it prints its help and exits 0; ``--version`` prints the version.
Exit statuses: 0 done; 1 a model call or writing the drawing failed; 2 the command
line or the environment cannot run the command (a bad argument, an unknown model, a
missing key or SDK, an unusable ``--cache`` file) -- reported before anything is
called.
"""

from __future__ import annotations

import argparse
import os
import sys

import ember


def _prog() -> str:
    """``ember`` when run as the console script, ``python -m ember`` otherwise."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "ember" if name in ("ember", "ember.exe") else "python -m ember"


def _parser() -> argparse.ArgumentParser:
    prog = _prog()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Ember XCS: plain Python that calls LLMs, made parallel by @xcs.jit.",
        epilog=f"Run `{prog} COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"ember-xcs {ember.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{demo,serve}")

    demo = commands.add_parser(
        "demo",
        help="run an ensemble -> judge pipeline plainly and under @jit",
        description=(
            "Run an ensemble -> judge pipeline plainly and under @xcs.jit, print both wall "
            "times, the answers and the graph of one question, and write its drawing. "
            "Offline on a simulated model unless --model or --base-url is given."
        ),
    )
    demo.set_defaults(command_parser=demo)  # its own usage line in its errors
    demo.add_argument("--width", type=int, default=8, help="drafts per question (default 8)")
    demo.add_argument(
        "--latency", type=float, default=0.1, help="seconds per simulated call (default 0.1)"
    )
    demo.add_argument(
        "--questions", type=int, default=5, help="how many questions, 1 to 5 (default 5)"
    )
    demo.add_argument(
        "--out",
        default=None,
        help="where to write the drawing: a .svg, .png, .pdf or .dot file "
        "(default ./ember-demo.svg)",
    )
    demo.add_argument(
        "--model",
        default=None,
        help="a model id (gpt-4o-mini, claude-haiku-4-5, openai/...) instead of the simulated one",
    )
    demo.add_argument(
        "--base-url", default=None, help="an OpenAI-compatible endpoint (vLLM, Ollama, ...)"
    )
    demo.add_argument(
        "--api-key-env",
        default=None,
        metavar="VARIABLE",
        help="the environment variable holding the --base-url endpoint's key (default: none)",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (times, answers, graph size, drawing) and nothing "
        "else on stdout",
    )
    demo.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (they are never shown when stderr is not a terminal)",
    )
    demo.add_argument(
        "--cache",
        nargs="?",
        const=True,
        default=False,
        metavar="PATH",
        help="keep the model's answers in a response cache (an SQLite file: PATH, or "
        "responses.sqlite3 in the user cache folder or $EMBER_CACHE_DIR), so running the "
        "demo again is fast; also runs the @jit pipeline a second time, from the cache",
    )

    serve = commands.add_parser(
        "serve", help="run a local LLM server speaking the OpenAI and Anthropic APIs"
    )
    serve.set_defaults(command_parser=serve)
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port, 0 for any (default 8000)")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds per answer (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; returns the exit status."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (``python -m ember demo | head``): stop quietly, as
        # command-line tools do, with nothing more written to the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    command = args.command_parser
    if args.latency < 0:
        command.error("--latency must be at least 0")
    if args.command == "serve":
        return _serve(args.host, args.port, args.latency)
    if args.width < 1:
        command.error("--width must be at least 1")
    if not 1 <= args.questions <= 5:
        command.error("--questions must be from 1 to 5")
    if args.cache == "":
        command.error("--cache PATH: the path is empty (give none for the default file)")
    from ember import _demo

    return _demo.main(
        width=args.width,
        latency=args.latency,
        questions=args.questions,
        out=args.out,
        model=args.model,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        json_output=args.json,
        progress=not args.quiet,
        cache=args.cache,
    )


def _serve(host: str, port: int, latency: float) -> int:
    from ember.models.server import LocalLLMServer

    try:
        server = LocalLLMServer(host, port, latency=latency)
    except OSError as error:
        print(f"error: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    print(f"OpenAI base URL: {server.openai_base_url}", flush=True)
    print(f"Anthropic base URL: {server.anthropic_base_url}", flush=True)
    print("Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
