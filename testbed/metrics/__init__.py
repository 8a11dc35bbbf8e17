"""Metrics and alerting: Prometheus scrape config, generated rules, Alertmanager, Grafana dashboards."""
