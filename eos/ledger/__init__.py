"""The ledger/payment processor: the engine's first application."""
