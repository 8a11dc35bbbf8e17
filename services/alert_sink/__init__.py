"""Alert sink: receives Alertmanager webhooks, keeps their history, answers queries for tests."""
