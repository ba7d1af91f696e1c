"""Conformance suites and helpers that plugin authors reuse in their own tests."""
