"""testbed: a reproducible observability testbed and chaos/load validation suite."""

__version__ = "0.1.0"
