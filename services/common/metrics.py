"""Every Prometheus metric the services expose, declared once (names documented in services/METRICS.md).

Route labels are route templates (``/orders/{order_id}``), never raw paths, so cardinality stays bounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Fit for the SLOs: latency objectives sit at 100/250/500 ms, with room below and above.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED_ROUTE = "<unmatched>"

service_info = Gauge(
    "service_info", "Constant 1, labelled with the instance's identity", ["service", "instance"]
)

http_requests = Counter(
    "http_requests",
    "HTTP requests served, by route template and status",
    ["service", "method", "route", "status"],
)
http_request_duration = Histogram(
    "http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
http_requests_in_flight = Gauge("http_requests_in_flight", "HTTP requests being served", ["service"])

dependency_requests = Counter(
    "dependency_requests", "Calls to another service or backend, by outcome", ["service", "target", "outcome"]
)
dependency_request_duration = Histogram(
    "dependency_request_duration_seconds",
    "Time of one call to a dependency (each retry counts)",
    ["service", "target"],
    buckets=LATENCY_BUCKETS,
)
circuit_breaker_open = Gauge(
    "circuit_breaker_open", "1 while the circuit to a target is open", ["service", "target"]
)

queue_messages_consumed = Counter(
    "queue_messages_consumed", "Messages handled by a consumer, by outcome", ["service", "queue", "outcome"]
)
queue_messages_published = Counter(
    "queue_messages_published", "Messages published (confirmed by the broker)", ["service", "routing_key"]
)
queue_consumer_lag = Histogram(
    "queue_consumer_lag_seconds",
    "Age of a message when its consumer got it",
    ["service", "queue"],
    buckets=(*LATENCY_BUCKETS, 5.0, 10.0, 30.0, 60.0),
)
queue_messages_ready = Gauge(
    "queue_messages_ready", "Messages waiting in a consumed queue (backlog)", ["service", "queue"]
)

orders_placed = Counter("orders_placed", "Orders accepted", ["service"])
payments_completed = Counter("payments_completed", "Payments settled", ["service"])
payments_failed = Counter("payments_failed", "Payments declined or failed", ["service", "reason"])
payments_duplicates = Counter(
    "payments_duplicate_messages", "Redelivered order messages not charged again", ["service"]
)

fault_injection_changes = Counter(
    "fault_injection_changes", "Changes of the injected faults", ["service", "action"]
)
fault_injection_active = Gauge(
    "fault_injection_active", "Injected fault in force (rate, ms or 1)", ["service", "kind"]
)

alerts_received = Counter("alerts_received", "Alerts received by the alert sink", ["service", "status"])
