"""Public share links: the addresses under them."""
