"""Payments: settles placed orders from the queue, exactly once per order, and publishes the outcome."""
