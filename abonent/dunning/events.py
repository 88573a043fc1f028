"""Reactions to other apps' events."""
