"""Pipeline stages: each reads a manifest, does its work per row, and writes a manifest."""
