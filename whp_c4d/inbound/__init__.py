"""Webhooks Twilio calls: status callbacks (and, with the inbound issue, incoming messages)."""
