"""Deliveries: one row per event and webhook endpoint, or per message; attempted at least once.

- queue: the kicks that hand due deliveries to workers, and the ordering keys.
- attempts: one attempt (lease, send through the target's breaker, success / retry / dead letter).
- replay: an operator gives a dead letter a fresh set of attempts.
- webhooks: the endpoints (registration, signing secrets and their rotation, removal).
"""
