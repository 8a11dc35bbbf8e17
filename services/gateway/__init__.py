"""Gateway: the shop's public HTTP API; composes inventory and orders over REST."""
