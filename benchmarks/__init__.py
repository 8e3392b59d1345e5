"""Throughput / latency scripts printing JSON; not part of the test run."""
