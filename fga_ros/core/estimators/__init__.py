"""Density and divergence estimators: pure, shape-documented torch functions."""
