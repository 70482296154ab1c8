"""`python -m bench [--quick] [--repeats N]`: print the benchmark table."""

from bench.cli import main

raise SystemExit(main())
