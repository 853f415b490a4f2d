"""Baseline servers the benchmark compares Tasks API with (same data, same query)."""
