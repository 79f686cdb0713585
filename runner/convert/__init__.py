"""Reversible model conversions applied by the convert stage (BetterTransformer)."""
