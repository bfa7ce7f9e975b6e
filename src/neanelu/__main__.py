"""`python -m neanelu ...` is the `neanelu` command (the demo starts its processes this way)."""

from neanelu.cli.entry import main

main()
