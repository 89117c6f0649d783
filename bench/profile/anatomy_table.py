"""Read labyrinth_bench_anatomy's JSON (with repetitions) on stdin; print a
markdown table row per variant: median pair ns, median burst ns/page."""
import json
import sys

d = json.load(sys.stdin)
med: dict = {}
for b in d["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    pat, var = b["run_name"].split("/")
    med.setdefault(var, {})[pat] = b["cpu_time"] / b.get("pages", 1)
for v in ["header", "no_guard", "no_owner", "pop_push", "model_header_layout", "model_count_in_record",
          "model_cmpxchg_commit"]:
    if v in med:
        pair, burst = med[v].get("anatomy_pair", 0), med[v].get("anatomy_burst256", 0)
        print(f"| {v} | {pair:.2f} | {burst:.2f} |")
