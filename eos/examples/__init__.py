"""Example applications for the engine."""
