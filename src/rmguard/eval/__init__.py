"""Measuring reward models: evaluation sets, metrics, intervals, gold labels, the four scenarios, diagnostics."""
