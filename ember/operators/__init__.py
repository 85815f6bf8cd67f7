"""``ember.operators``: small composable pipeline steps, parallel under ``@xcs.jit``.

::

    from ember import operators, xcs

    ensemble = operators.UniformEnsemble(5, "simulated/chat", seed=0)
    judge = operators.JudgeSynthesis("simulated/chat")

    @xcs.jit
    def answer(question):
        return judge(question, ensemble(question)).final_answer

Operators are composites: ``@jit`` traces through their ``forward``, so the model
calls of independent operators overlap.
"""

from ember.operators.base import Chain, Operator, Sequential
from ember.operators.ensemble import Ensemble, MostCommon, UniformEnsemble
from ember.operators.reasoning import Judgement, JudgeSynthesis, Verdict, Verifier
from ember.operators.routing import Router

__all__ = [
    "Chain",
    "Ensemble",
    "JudgeSynthesis",
    "Judgement",
    "MostCommon",
    "Operator",
    "Router",
    "Sequential",
    "UniformEnsemble",
    "Verdict",
    "Verifier",
]
