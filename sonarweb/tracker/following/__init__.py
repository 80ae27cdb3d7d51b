"""Following research runs: starting them, polling them, the refresher loop and its chores."""
