"""Prepaid cards: series sold through dealers, activated once as a top-up or a hotspot login."""
