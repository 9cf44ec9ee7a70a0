"""Benchmarks of the kernel; run them with ``python -m bench.<name>``."""
