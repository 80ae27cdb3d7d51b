"""Members' Perplexity keys at work: the per-key call budget, and the upstream clients bound to
a stored key (every call budgeted and logged)."""
