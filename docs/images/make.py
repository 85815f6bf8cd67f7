"""Draw the example pictures of the docs (run from the repository root, needs ember-xcs[viz]).

python docs/images/make.py
"""

from __future__ import annotations

import time
from pathlib import Path

from ember import xcs

HERE = Path(__file__).resolve().parent


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


def main() -> None:
    """Draw the pictures next to this file."""
    xcs.trace(ensemble_in_parallel, "Why is the sky blue?").draw(HERE / "ensemble.png")
    traced = xcs.trace(ensemble, "Why is the sky blue?")
    traced.draw(HERE / "ensemble_with_try.png")
    traced.timeline().savefig(HERE / "ensemble_with_try_timeline.png", dpi=100)


if __name__ == "__main__":
    main()
