"""The demo's portal passwords (filled by the auth area)."""
