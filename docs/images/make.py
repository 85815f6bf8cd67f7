"""Draw the example pictures of the docs (run from the repository root, needs ember-xcs[viz]).

python docs/images/make.py             # the drawings (graphviz PNGs)
python docs/images/make.py --browser   # and screenshots of them in headless Chromium

The screenshots show what a notebook shows: each SVG inlined in a cell-wide (880 px)
column with Jupyter's ``max-width: 100%`` rule, rendered by a real browser
(``apt install chromium``). They are the demo's graph, a 40-document fan-out, a
500-call pipeline and the timeline of 64 concurrent calls.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ember import xcs

HERE = Path(__file__).resolve().parent
CELL_WIDTH = 880  # px: a notebook cell's output area at a usual window width


@xcs.op
def ask(prompt: str) -> str:
    """A stand-in LLM call: 0.2 s; draft 3 times out."""
    time.sleep(0.2)
    if "(draft 3)" in prompt:
        raise TimeoutError("the model did not answer")
    return f"answer to {prompt!r}"


@xcs.op
def judge(answers: list[str]) -> str:
    """Picks the longest answer."""
    time.sleep(0.1)
    return max(answers, key=len)


def ensemble(question: str) -> str:
    """A try around each call: exact, and one call at a time."""
    drafts = []
    for i in range(5):
        try:
            drafts.append(ask(f"{question} (draft {i})"))
        except TimeoutError:
            continue
    best = judge(drafts)
    return ask(f"Polish: {best}")


def ensemble_in_parallel(question: str) -> str:
    """Drafts together, then the judge, then the polish."""
    drafts = [ask(f"{question} (draft {i})") for i in (0, 1, 2, 4)]
    best = judge(drafts)
    return ask(f"Polish: {best}")


@xcs.op
def summarize(document: str) -> str:
    """A stand-in summary call: 50 ms."""
    time.sleep(0.05)
    return f"  summary of {document}  "


def summarize_all(documents: list[str]) -> str:
    """Per-document work right after each call, then one call over all of it."""
    summaries = [summarize(d).strip().upper() for d in documents]
    return judge(summaries)


def answer_many(questions: list[str]) -> list[str]:
    """Four drafts and a judge per question: 5 calls a question."""
    return [judge([ask(f"{q} (draft {i})") for i in (0, 1, 2, 4)]) for q in questions]


@xcs.op
def wait(seconds: float) -> float:
    """Sleeps: one bar of the timeline."""
    time.sleep(seconds)
    return seconds


def many_waits(n: int) -> float:
    """``n`` calls at once, then their sum."""
    return sum([wait(0.05 + 0.001 * (i % 7)) for i in range(n)])


def main() -> None:
    """Draw the pictures next to this file; ``--browser`` also takes the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", action="store_true", help="also take the screenshots")
    browser = parser.parse_args().browser
    xcs.trace(ensemble_in_parallel, "Why is the sky blue?").draw(HERE / "ensemble.png")
    traced = xcs.trace(ensemble, "Why is the sky blue?")
    traced.draw(HERE / "ensemble_with_try.png")
    traced.timeline().savefig(HERE / "ensemble_with_try_timeline.png", dpi=100)
    if browser:
        screenshots()


def _svgs(where: Path) -> dict[str, Path]:
    """The SVGs to screenshot, drawn into ``where``."""
    from ember import _demo

    pipeline, _ = _demo.build(width=8, latency=0.1, model=None, base_url=None)
    drawn = {
        "screenshot_demo": xcs.trace(_demo.answer_all, pipeline, _demo.QUESTIONS[:1]),
        "screenshot_40_documents": xcs.trace(summarize_all, [f"doc {i}" for i in range(40)]),
        "screenshot_500_calls": xcs.trace(answer_many, [f"question {i}" for i in range(100)]),
    }
    paths = {name: trace.draw(where / f"{name}.svg") for name, trace in drawn.items()}
    timeline = xcs.trace(many_waits, 64).timeline()
    paths["screenshot_timeline_64"] = where / "screenshot_timeline_64.svg"
    timeline.savefig(paths["screenshot_timeline_64"])
    return paths


def _size(svg: str) -> tuple[float, float]:
    """The SVG's width and height in CSS px (its ``pt`` sizes are 4/3 px)."""
    found = re.search(r'<svg[^>]*?width="([\d.]+)(pt|px)?"[^>]*?height="([\d.]+)(pt|px)?"', svg)
    if found is None:
        raise ValueError("an SVG without width and height")
    scale = 4 / 3 if found.group(2) == "pt" else 1.0
    return float(found.group(1)) * scale, float(found.group(3)) * scale


def screenshots() -> None:
    """Render each SVG in a notebook-wide column in headless Chromium, as a PNG."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: apt install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _svgs(Path(tmp)).items():
            svg = path.read_text()
            width, height = _size(svg)
            shown = min(width, CELL_WIDTH)
            page = Path(tmp) / f"{name}.html"
            page.write_text(
                "<!doctype html><html><body style='margin:0;background:#fff'>"
                f"<div style='width:{CELL_WIDTH}px;padding:10px'>"
                "<style>svg{max-width:100%;height:auto}</style>"
                f"{svg[svg.index('<svg') :]}</div>"
                f"<!-- {html.escape(name)} --></body></html>"
            )
            page_height = int(height * shown / width) + 24
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--window-size={CELL_WIDTH + 20},{page_height}",
                    f"--screenshot={HERE / (name + '.png')}",
                    page.as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            print(f"{name}.png: drawing {width:.0f} x {height:.0f} px, shown {shown:.0f} px wide")


if __name__ == "__main__":
    main()
