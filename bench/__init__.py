"""Benchmarks (figures, not tests)."""
