"""An example eos app: price orders and keep each customer's running total."""
