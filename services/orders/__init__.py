"""Orders: the order lifecycle in its own database; publishes order.placed, applies payment results."""
