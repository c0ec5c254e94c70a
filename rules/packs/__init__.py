"""Shipped rule packs (data only)."""
