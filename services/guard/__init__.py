"""Guards for a public deployment: limits, budgets, privacy, output safety."""
