"""What this app adds to the subscriber card."""
