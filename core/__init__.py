"""Project-wide building blocks that every package may use (declared offline assets)."""
