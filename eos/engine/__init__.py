"""Delivery semantics: batches, transactions, the dead-letter topic, the run loop."""
