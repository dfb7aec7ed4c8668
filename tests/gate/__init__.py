"""The promotion gate: statistics, verdicts, and the simulations behind its guarantees."""
