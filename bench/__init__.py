"""Benchmarks (`make bench-*`): timing lives here, never in the test suites."""
