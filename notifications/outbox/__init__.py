"""The outbox: the typed catalogue of event types (catalogue) and the one writer (emit)."""
