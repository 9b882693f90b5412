"""Findings: a seed's claim stated as checks that can each fail, judged on the results tables.

A finding function is `fn(history, results, *, options...) -> Finding`, registered by name. A spec lists its
findings in `[[findings]]` tables: `name` (the function), `claim` (the seed's words, quoted in the report),
optionally `figure` (the figure file it reads, for the report's links) and the function's options — the
lines the claim draws (a slope band, an intercept sign, a tolerance), for a comparison or a trend `margin`
(the smallest effect that matters, in the claim's units, with a one-line reason from the seed beside it) and,
for a claim the seed says does *not* hold, `paper = "no"`.

    [[findings]]
    name = "slope"
    claim = "normalized test loss vs train loss: slope 1, positive offset (000 Fig. 4-6)"
    x = "normalized_loss.train"
    y = "normalized_loss.test"
    target = 1.0
    tolerance = 0.1            # the slope band [0.9, 1.1], fixed: it does not widen with noisy data
    intercept = "positive"
    intercept_margin = 0.01    # an offset below 0.01 (the seed reports ≈ 0.1) is no offset
    require = "train_error == 0"   # runs that did not get there are left out, and listed

Each check holds an estimate's interval against its line (genlab.findings.verdicts): agrees, differs, no effect at
this scale (inside ± margin), or inconclusive (not enough seeds yet: it says how many more); a check read off
one run has no error bar and is not judged. Errors are standard errors over seeds (sample std / √n, ddof = 1),
never variances; intervals are t intervals at the error rate the look spends (α_k, genlab.findings.verdicts), so
`genlab run --decide` may add seeds and look again without inflating wrong verdicts. A finding agrees when
every check agrees, differs when any check differs. Every finding states what would make it fail.
"""

from genlab.findings.base import (INJECTED, Finding, FindingFn, evaluate, finding, get_finding,  # noqa: F401
                                  list_findings, register_finding, unmet, values_text)
from genlab.findings.verdicts import DECIDED, VERDICTS, Check, Evidence, judge  # noqa: F401
from genlab.findings import curves, groups, lines  # noqa: E402,F401  (register their findings)
from genlab.findings.groups import difference  # noqa: F401
from genlab.findings.base import PRECONDITION, linear_fit, negate, seeds_of  # noqa: F401

__all__ = ["Check", "DECIDED", "VERDICTS", "Finding", "evaluate", "judge", "Evidence"]
