"""Webhooks: ingress (verify, record once, enqueue) and the handlers that apply deliveries."""
