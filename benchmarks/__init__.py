"""Benchmarks: each script writes its figures with common.write_result; report.py renders them."""
