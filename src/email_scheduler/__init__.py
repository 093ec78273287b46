"""Compliance-aware email scheduler for Medicare insurance agencies."""

__version__ = "0.1.0"
