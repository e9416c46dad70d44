"""Benchmarks (``noisyneuron bench ...``): speed measured against peers in the same run, as ratios."""
