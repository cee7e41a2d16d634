"""Analysis: evaluation metrics, figures, the oracle experiment, benchmarks."""
