"""`python -m bench`: the engine and storage benchmarks, then the end-to-end matrix."""

from bench import e2e, engine, storage

engine.main()
storage.main()
e2e.main()
