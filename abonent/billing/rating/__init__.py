"""Rating: charges computed from what was used (time online, and traffic over the included volume)."""
