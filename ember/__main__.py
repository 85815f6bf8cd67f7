"""Command line: ``python -m ember demo`` and ``python -m ember serve``."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ember", description="Ember XCS")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="run an ensemble -> judge pipeline plainly and under @jit"
    )
    demo.add_argument("--width", type=int, default=8, help="drafts per question (default 8)")
    demo.add_argument(
        "--latency", type=float, default=0.1, help="seconds per simulated call (default 0.1)"
    )
    demo.add_argument(
        "--questions", type=int, default=5, help="how many questions, 1 to 5 (default 5)"
    )
    demo.add_argument(
        "--out", default=None, help="where to write the drawing (default ./ember-demo.svg)"
    )
    demo.add_argument(
        "--model",
        default=None,
        help="a model id (openai/gpt-4o-mini, claude-...) instead of the simulated one",
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

    serve = commands.add_parser(
        "serve", help="run a local LLM server speaking the OpenAI and Anthropic APIs"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port, 0 for any (default 8000)")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds per answer (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.latency < 0:
        parser.error("--latency must be at least 0")
    if args.command == "serve":
        return _serve(args.host, args.port, args.latency)
    if args.width < 1:
        parser.error("--width must be at least 1")
    if not 1 <= args.questions <= 5:
        parser.error("--questions must be from 1 to 5")
    from ember import _demo

    return _demo.main(
        width=args.width,
        latency=args.latency,
        questions=args.questions,
        out=args.out,
        model=args.model,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
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
