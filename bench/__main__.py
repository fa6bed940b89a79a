"""`python -m bench`: engine, storage, end-to-end matrix, then memory over 10,000 screenings."""

import asyncio

from bench import e2e, engine, memory, storage

engine.main()
storage.main()
e2e.main()
asyncio.run(memory.main_async())
