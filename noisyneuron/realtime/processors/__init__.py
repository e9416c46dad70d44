"""Processors that run in a chain."""
