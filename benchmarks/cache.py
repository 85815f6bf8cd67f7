"""Cache benchmark: the demo's pipeline over HTTP (``openai`` SDK) with the response cache.

Run by hand (not part of the test suite)::

    python benchmarks/cache.py                       # 10 questions x (8 drafts + judge), 200 ms
    python benchmarks/cache.py --repeat 9 --latency 0.5

The pipeline is the one ``python -m ember demo`` runs (``ember._demo.AnswerQuestion``: an
ensemble of seeded drafts, then a judge), its model ``chat`` behind the ``openai`` SDK,
served by :class:`ember.models.server.LocalLLMServer` in its own process (as a real
endpoint would be; ``--in-process`` to run it on a thread here), which answers after
``--latency`` seconds and counts the requests it gets. The model is called with
``temperature=0``, so every call is reproducible and the response cache
(``models.cache``) keeps it. Timed, plain Python and under ``@xcs.jit``, each with the
server's requests per run:

* caching off (the reference);
* a cold cache (a new SQLite file for each run): every call a miss, its answer stored;
* a warm cache (the SQLite file, then in memory): every call a hit, and no request may
  reach the server;
* the demo's own pipeline (no ``temperature``: its judge samples) with a warm cache: the
  seeded drafts come from the cache, each judge call is sent again.

Medians over ``--repeat`` runs with the min-max range (a plain run that sends requests
once: it is long); every run's answers are checked against the first. The script exits
non-zero when a warm run sends a request, a run sends other than the calls it should,
or the pipeline loses its parallel structure under ``@jit`` with the cache on (cold or
warm: all drafts in one group, then the judges).

Then what the cache costs per call, on the simulated model without latency (no request,
so only the cache's own work shows): a call without the cache, a miss (its answer
stored) and a hit, on an SQLite file and in memory; a miss in a file that already
holds ``--entries`` answers; and, for scale, a call through the ``openai`` SDK to the
server without latency (what a hit saves at the least).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.models import model_waves  # noqa: E402
from ember import _demo, models, operators, xcs  # noqa: E402
from ember.models.providers import OpenAIProvider  # noqa: E402
from ember.models.response_cache import turn_on  # noqa: E402
from ember.models.server import LocalLLMServer  # noqa: E402

QUESTIONS = [f"Question {i}: why does thing {i} happen?" for i in range(100)]

# The server's process: prints its URL, then for each line read prints the requests it
# answered since the line before.
SERVE = """
import sys
from ember.models.server import LocalLLMServer
server = LocalLLMServer(latency=float(sys.argv[1])).start()
print(server.openai_base_url, flush=True)
for _ in sys.stdin:
    print(len(server.requests), flush=True)
    server.reset()
"""


@contextlib.contextmanager
def serving(latency: float, in_process: bool) -> Iterator[tuple[str, Callable[[], int]]]:
    """``(OpenAI base URL, requests())`` of a local server; ``requests()`` counts the
    requests it answered since the last count."""
    if in_process:
        with LocalLLMServer(latency=latency) as server:

            def counted() -> int:
                n = len(server.requests)
                server.reset()
                return n

            yield server.openai_base_url, counted
        return
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def asked() -> int:
        stdin.write("\n")
        stdin.flush()
        return int(stdout.readline())

    try:
        yield stdout.readline().strip(), asked
    finally:
        stdin.close()  # the server's loop ends
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=10)


@contextlib.contextmanager
def cached(path: Path | None = None) -> Iterator[models.ResponseCache]:
    """The cache in ``path`` (None: in memory) on for the block, then closed."""
    cache = models.cache(path, memory=path is None)
    try:
        with cache:
            yield cache
    finally:
        cache.store.close()


@contextlib.contextmanager
def again(cache: models.ResponseCache) -> Iterator[models.ResponseCache]:
    """``cache`` on again for the block (a ``with`` on the object only turns it off)."""
    with turn_on(cache):
        yield cache


def pipeline(model: models.ModelBinding, width: int) -> _demo.AnswerQuestion:
    """The demo's pipeline (``ember._demo.build``) on ``model``."""
    ensemble = operators.UniformEnsemble(width, model, seed=0)
    return _demo.AnswerQuestion(ensemble, operators.JudgeSynthesis(model))


Setting = Callable[[], contextlib.AbstractContextManager[Any]]


def measured(
    run: Callable[[], Any],
    setting: Setting,
    repeat: int,
    expected: Any,
    requests: Callable[[], int],
) -> tuple[list[float], list[int]]:
    """Seconds and server requests of ``repeat`` runs, each in a new ``setting()``."""
    times, sent = [], []
    for _ in range(repeat):
        with setting():
            requests()  # from here
            start = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - start)
            sent.append(requests())
        assert result == expected, "a run answered differently from the first one"
    return times, sent


def row(label: str, times: list[float], sent: list[int], reference: float | None) -> None:
    med = statistics.median(times)
    spread = f"({min(times):.3f}-{max(times):.3f})" if len(times) > 1 else ""
    requests = f"{min(sent)}" if min(sent) == max(sent) else f"{min(sent)}-{max(sent)}"
    versus = f"  {reference / med:8.1f}x" if reference else ""
    print(f"  {label:<44} {med:9.4f} s {spread:<15} {requests:>8}{versus}")


def per_call(calls: Callable[[list[str]], None], prompts: list[str]) -> float:
    """Microseconds per call of ``calls(prompts)``."""
    start = time.perf_counter()
    calls(prompts)
    return (time.perf_counter() - start) / len(prompts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000, help="calls per cost measurement")
    parser.add_argument("--entries", type=int, default=5000, help="answers in the full file")
    parser.add_argument("--in-process", action="store_true", help="serve on a thread here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ember-cache-bench-"))
    try:
        measure(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(args: argparse.Namespace, folder: Path) -> None:
    """Run the measurements (cache files in ``folder``) and print them."""
    questions = QUESTIONS[: args.questions]
    calls = args.questions * (args.width + 1)
    files = iter(range(1_000_000))

    def fresh() -> contextlib.AbstractContextManager[models.ResponseCache]:
        """A cache in a new SQLite file (cold)."""
        return cached(folder / f"cold-{next(files)}.sqlite3")

    failures: list[str] = []

    with serving(args.latency, args.in_process) as (url, requests):
        print(
            f"{args.questions} questions x ({args.width} drafts + 1 judge) = {calls} calls "
            f"of {args.latency * 1000:.0f} ms, openai SDK -> {url} (temperature=0)\n"
        )
        models.register_provider("bench", OpenAIProvider(base_url=url))
        pipe = pipeline(models.instance("bench/chat", temperature=0), args.width)
        plain = lambda: _demo.answer_all(pipe, questions)  # noqa: E731
        jitted = xcs.jit(_demo.answer_all)
        fast = lambda: jitted(pipe, questions)  # noqa: E731

        with models.no_cache():
            requests()
            expected = plain()
            if requests() != calls:
                failures.append("caching off: the plain run did not send every call")
            fast()  # warm: SDK clients, connections, the rewrite

        def structure(when: str) -> None:
            waves = model_waves(xcs.trace(_demo.answer_all, pipe, questions), "bench/chat")
            ideal = [args.questions * args.width, args.questions]
            print(f"  model calls per parallel group under @jit, {when}: {waves} (ideal {ideal})")
            if waves != ideal:
                failures.append(f"the pipeline lost its parallel structure under @jit ({when})")

        with fresh():
            structure("cold cache")
        warm_file = folder / "warm.sqlite3"
        with cached(warm_file):
            plain()  # fills it
            structure("warm cache")
        requests()

        print(f"\n  {'':<44} {'median':>11} {'(min-max)':<15} {'requests':>8}  vs off")
        results: dict[str, tuple[list[float], list[int]]] = {}
        warm = lambda: cached(warm_file)  # noqa: E731
        plan: list[tuple[str, Callable[[], Any], Setting, int]] = [
            ("caching off, plain Python", plain, models.no_cache, 1),
            ("caching off, @jit", fast, models.no_cache, args.repeat),
            ("cold cache (new SQLite file), plain Python", plain, fresh, 1),
            ("cold cache (new SQLite file), @jit", fast, fresh, args.repeat),
            ("warm cache (SQLite file), plain Python", plain, warm, args.repeat),
            ("warm cache (SQLite file), @jit", fast, warm, args.repeat),
        ]
        memory = models.cache(memory=True)
        with memory:
            plain()  # fills it
        requests()
        plan += [
            ("warm cache (in memory), plain Python", plain, lambda: again(memory), args.repeat),
            ("warm cache (in memory), @jit", fast, lambda: again(memory), args.repeat),
        ]
        for label, run, setting, times in plan:
            results[label] = measured(run, setting, times, expected, requests)
            kind = label.rsplit(", ", 1)[1]
            reference = results.get(f"caching off, {kind}")
            versus = (
                statistics.median(reference[0])
                if reference and reference is not results[label]
                else None
            )
            row(label, *results[label], versus)
            sent = results[label][1]
            if label.startswith("warm") and any(sent):
                failures.append(f"{label}: {max(sent)} requests reached the server")
            if not label.startswith("warm") and set(sent) != {calls}:
                failures.append(f"{label}: {sent} requests, not {calls} each")

        # The demo's own pipeline: no temperature, so its judge samples (not cached).
        demo = pipeline(models.instance("bench/chat"), args.width)
        demo_file = folder / "demo.sqlite3"
        with cached(demo_file):
            demo_expected = _demo.answer_all(demo, questions)  # fills the drafts
        requests()
        times, sent = measured(
            lambda: jitted(demo, questions),
            lambda: cached(demo_file),
            args.repeat,
            demo_expected,
            requests,
        )
        row("demo's pipeline (judge samples), warm, @jit", times, sent, None)
        if set(sent) != {args.questions}:
            failures.append(f"the demo's pipeline, warm: {sent} requests, not one per judge")

        print(f"\n  cost per call, {args.calls} calls of simulated/chat without latency:")
        model = models.instance("simulated/chat")

        def call_all(prompts: list[str]) -> None:
            for prompt in prompts:
                model(prompt)

        def costs(label: str, path: Callable[[int], Path | None]) -> None:
            misses, hits = [], []
            for r in range(args.repeat):
                prompts = [f"{label} {r} prompt {i}" for i in range(args.calls)]
                with cached(path(r)) as cache:
                    misses.append(per_call(call_all, prompts))
                    hits.append(per_call(call_all, prompts))
                    info = cache.info()
                if (info.misses, info.hits, info.stores) != (args.calls,) * 3:
                    failures.append(f"{label}: {info}")
            miss, hit = statistics.median(misses), statistics.median(hits)
            print(f"    {label + ': miss, answer stored':<48} {miss:9.1f} us  ({miss - bare:+.1f})")
            print(f"    {label + ': hit':<48} {hit:9.1f} us  ({hit - bare:+.1f})")

        bare = statistics.median(
            per_call(call_all, [f"bare {r} prompt {i}" for i in range(args.calls)])
            for r in range(args.repeat)
        )
        print(f"    {'without the cache':<48} {bare:9.1f} us")
        costs("SQLite file", lambda r: folder / f"costs-{r}.sqlite3")
        costs("in memory", lambda r: None)

        with cached(folder / "full.sqlite3") as full:
            answer = '{"model_id":"simulated/chat","text":"%s","usage":{}}' % ("y" * 200)
            for i in range(args.entries):  # through the store: as calls would fill it
                full.store.put(f"{i:064x}", "x" * 300, answer, full.max_bytes)
            prompts = [f"full prompt {i}" for i in range(min(args.calls, 500))]
            entries = full.info().entries
            miss = per_call(call_all, prompts)
            hit = per_call(call_all, prompts)
        label = f"SQLite file of {entries} answers"
        print(f"    {label + ': miss, answer stored':<48} {miss:9.1f} us  ({miss - bare:+.1f})")
        print(f"    {label + ': hit':<48} {hit:9.1f} us  ({hit - bare:+.1f})")

    with serving(0.0, args.in_process) as (url, requests):
        models.register_provider("bench_now", OpenAIProvider(base_url=url))
        now = models.instance("bench_now/chat", temperature=0)
        prompts = [f"http prompt {i}" for i in range(min(args.calls, 500))]
        with models.no_cache():
            now(prompts[0])  # the SDK client, the connection
            http = per_call(lambda ps: [now(p) for p in ps], prompts)
        print(f"    {'openai SDK over loopback, without the cache':<48} {http:9.1f} us")

    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main()
