"""`python -m mantle_gateway` runs the same CLI as the `mantle-gateway` command."""

from mantle_gateway.cli.main import main

raise SystemExit(main())
