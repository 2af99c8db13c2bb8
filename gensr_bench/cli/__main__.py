"""``python -m gensr_bench.cli``: the same as the ``gensr-bench`` console script."""

from gensr_bench.cli import main

raise SystemExit(main())
