"""After `mutmut run`: the share of mutants killed per module, and each survivor by name.
Exits non-zero when a module is below the bar (CONTRIBUTING.md lists the known survivors)."""

from __future__ import annotations

import collections
import subprocess
import sys

BAR = 0.85

lines = subprocess.run(
    [sys.executable, "-m", "mutmut", "results", "--all", "true"],
    capture_output=True,
    text=True,
    check=True,
).stdout.splitlines()
counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
survivors = []
for line in lines:
    name, _, status = line.strip().rpartition(": ")
    if "__mutmut_" not in name:
        continue
    module = ".".join(name.split(".")[:2])
    status = "killed" if status == "timeout" else status  # the tests did not pass: caught
    counts[module][status] += 1
    if status != "killed":
        survivors.append(f"{name}: {status}")
failed = False
for module, tally in sorted(counts.items()):
    total = sum(tally.values())
    score = tally["killed"] / total
    failed |= score < BAR
    print(f"{module}: {tally['killed']}/{total} killed ({score:.0%})")
print("\n".join(survivors))
sys.exit(1 if failed else 0)
