"""Throughput and latency scripts; each prints one JSON object. Not part of the test run."""
