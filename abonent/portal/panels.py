"""The subscriber card's "Portal" panel (filled by the auth area)."""
