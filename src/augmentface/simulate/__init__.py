"""Generators of dataset-like fitted manifests with realistic label statistics, for tests and
benchmarks of the learned expression models (never used on real data)."""
