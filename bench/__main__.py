"""``python -m bench [quick|full]``: see :mod:`bench.quick`."""

from bench.quick import main

main()
