"""Serving what a process shows its operator: an HTTP endpoint for metrics and probes.
Knows nothing of the engine: it serves any `Probe`."""
