"""The team's costs, per month, member and model."""
