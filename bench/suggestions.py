"""Shows what functions/cms/examples/suggestions_bench.rs measured, for
bench/suggestions.sh: figures, ratios to the baselines, PASS or MISS."""

import json
import sys

WARM_P99_TARGET_MS = 5.0
COLD_TARGET_MS = 300.0

report = json.load(open(sys.argv[1]))
warm, base = report["warm"], report["baselines"]


def line(label, figures):
    print(f"  {label:<34} p50 {figures['p50Ms']:8.3f} ms   p99 {figures['p99Ms']:8.3f} ms   max {figures['maxMs']:8.3f} ms   (n={figures['n']})")


print(f"{report['rows']} suggestions, {report['words']} distinct words indexed")
print("warm, one request each:")
line("cms router (fst index)", warm["all"])
line("  of which with a typo", warm["withTypo"])
line("  index search alone", warm["indexOnly"])
line("PostgreSQL ILIKE 'prefix%'", base["postgresIlike"])
line("linear scan in memory", base["linearScan"])
s = report["speedup"]
print(f"  baseline time / cms time: ILIKE p50 x{s['vsIlikeP50']:.1f}, p99 x{s['vsIlikeP99']:.1f}; "
      f"scan p50 x{s['vsScanP50']:.1f}, p99 x{s['vsScanP99']:.1f}")
print(f"  share of queries answered with something: {warm['answeredSomething']:.2f}")
cold = report["cold"]
print("cold container (App::build, first request: connect, read all rows, build the index, answer):")
print("  each run: " + ", ".join(f"{ms:.0f} ms" for ms in cold["eachMs"]))
print("  of which reading and building: " + ", ".join(f"{ms:.0f} ms" for ms in cold["loadAndBuildMs"]))
print("  of which reading the rows: " + ", ".join(f"{ms:.0f} ms" for ms in cold["readMs"]))
p99 = warm["all"]["p99Ms"]
worst_cold = max(cold["eachMs"])
median_cold = cold["runs"]["p50Ms"]
print(f"warm p99 {p99:.3f} ms <= {WARM_P99_TARGET_MS} ms: {'PASS' if p99 <= WARM_P99_TARGET_MS else 'MISS'}")
# Judged by the median of the runs, as every figure of bench/ is: one cold
# start on a shared machine is one draw; the worst is shown beside it.
print(f"cold first answer median {median_cold:.0f} ms <= {COLD_TARGET_MS:.0f} ms: "
      f"{'PASS' if median_cold <= COLD_TARGET_MS else 'MISS'} (worst of {len(cold['eachMs'])}: {worst_cold:.0f} ms; "
      f"{sum(ms > COLD_TARGET_MS for ms in cold['eachMs'])} over {COLD_TARGET_MS:.0f} ms)")
