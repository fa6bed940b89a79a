"""`python -m bench`: engine, storage, the end-to-end matrix (instant and over a network), then
memory over 10,000 screenings."""

import asyncio
import os

from bench import e2e, engine, memory, storage

engine.main()
storage.main()
e2e.main()
dbs = ["sqlite"] + (["postgres"] if os.environ.get("PRESCREEN_BENCH_POSTGRES_URL") else [])
print(e2e.network_table(e2e.network_matrix(dbs, latency_ms=20.0)))
asyncio.run(memory.main_async())
