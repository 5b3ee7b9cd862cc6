"""Messaging: segment calculator, senders, outbox, channels."""
