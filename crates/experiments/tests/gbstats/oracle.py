"""GrowthBook's own stats engine (gbstats) as the oracle of tests/spec/gbstats.rs.

Reads cases as JSON on stdin:

    {"comparisons": [{"name", "kind": "proportion" | "mean",
                      "control": {"units", "sum", "sumSquares"},
                      "treatment": {...}}],
     "srm": [{"name", "observed": [int], "weights": [float]}]}

and prints gbstats' answers for them as JSON on stdout. Only the public
gbstats API computes the answers; this script just translates.
"""

import importlib.metadata
import json
import sys

from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.utils import check_srm


def statistic(kind, arm):
    if kind == "proportion":
        return ProportionStatistic(n=arm["units"], sum=arm["sum"])
    if kind == "mean":
        return SampleMeanStatistic(
            n=arm["units"], sum=arm["sum"], sum_squares=arm["sumSquares"]
        )
    raise ValueError(f"unknown metric kind {kind!r}")


def comparison(case):
    test = TwoSidedTTest(
        statistic(case["kind"], case["control"]),
        statistic(case["kind"], case["treatment"]),
        FrequentistConfig(alpha=0.05, difference_type="relative"),
    )
    result = test.compute_result()
    return {
        "name": case["name"],
        "lift": float(result.expected),
        "ciLower": float(result.ci[0]),
        "ciUpper": float(result.ci[1]),
        "pValue": float(result.p_value),
        "standardError": float(result.uplift.stddev),
        # gbstats reports no degrees of freedom, and cannot compute them for
        # the arms it refuses (a division by zero for an arm of one unit).
        "degreesOfFreedom": None if result.error_message else float(test.dof),
        "errorMessage": result.error_message,
    }


def srm(case):
    return {
        "name": case["name"],
        "pValue": float(check_srm(case["observed"], case["weights"])),
    }


def main():
    cases = json.load(sys.stdin)
    answers = {
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("gbstats", "scipy", "numpy")
        },
        "comparisons": [comparison(case) for case in cases["comparisons"]],
        "srm": [srm(case) for case in cases["srm"]],
    }
    # allow_nan=False: a NaN would not be valid JSON, fail loudly instead.
    json.dump(answers, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
