"""Scenarios: load profile, optional chaos experiment, promises to verify (spec, runner, verifier, report)."""
