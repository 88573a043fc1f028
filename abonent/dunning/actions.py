"""Writing access states."""
