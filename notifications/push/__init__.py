"""Web Push: a person's browsers (subscriptions) and sending one push to one of them (VAPID, aes128gcm)."""
