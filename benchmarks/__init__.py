"""labkit's benchmark suite (``labkit bench`` / ``python -m benchmarks``); never part of pytest pass/fail."""
