"""Instrumentation all services share: settings, ECS logs, tracing, metrics, faults, REST and AMQP."""
