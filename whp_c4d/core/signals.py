"""Signals through which earlier domains hear about later ones (the import rule runs one way)."""

from blinker import Namespace

_signals = Namespace()

#: Sent with ``contact_id`` before a contact row is deleted by the erasure service. Every domain
#: that stores data about a contact connects a receiver that deletes it, in the same transaction.
contact_erasing = _signals.signal("contact-erasing")
