"""`python -m bench`: how steady the machine is, PostgreSQL's round trips, the engine, storage,
the end-to-end matrix (instant and over a network), then memory over 10,000 screenings, each in
a process of its own (so that one part's memory does not show in the next one's peak)."""

import subprocess
import sys

for part in (
    ["bench.steadiness"],
    ["bench.roundtrip"],
    ["bench.engine"],
    ["bench.storage"],
    ["bench.e2e"],
    ["bench.e2e", "--network"],
    ["bench.memory"],
):
    subprocess.run([sys.executable, "-m", *part], check=True)
