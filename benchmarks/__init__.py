"""Benchmarks of spectrum-tools: local pipeline, pacing, latency hiding.

Run everything with ``python -m benchmarks.run --out benchmarks/results`` from the
repository root (``--smoke`` for tiny sizes). See ``benchmarks/README.md``.
"""
