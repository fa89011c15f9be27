"""Benchmark tools: the data generator (``bench.generate``) and the benchmark (``bench.run``)."""
