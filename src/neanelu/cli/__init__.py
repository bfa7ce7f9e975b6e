"""Command line: a composition root that wires settings, servers and domains together."""
