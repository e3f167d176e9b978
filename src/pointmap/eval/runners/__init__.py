"""Readers of public benchmarks in their published on-disk layouts, yielding what the evaluators take."""
