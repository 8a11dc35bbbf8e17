"""Inventory: the catalog and stock reservations, in its own PostgreSQL database."""
