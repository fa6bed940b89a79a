"""`python -m bench`: run every benchmark."""

from bench import engine

engine.main()
