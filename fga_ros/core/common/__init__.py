"""Lowest room of the core: checks, actions, configuration, environment, torch helpers."""
