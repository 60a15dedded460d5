"""Throughput and memory figures of the platform (``python -m benchmarks.<name>``); not part of the tests."""
