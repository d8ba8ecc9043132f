"""Benchmarks (`make bench`): what the platforms cost and how faithful the models are."""
