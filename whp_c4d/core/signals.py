"""Signals through which earlier domains hear about later ones (the import rule runs one way)."""

from blinker import Namespace

_signals = Namespace()

#: Sent with ``contact_id`` before a contact row is deleted by the erasure service. Every domain
#: that stores data about a contact connects a receiver that deletes it, in the same transaction.
contact_erasing = _signals.signal("contact-erasing")

#: Sent with ``message`` (an ``InboundMessage`` understood as feedback: free text, or a poll answer kept
#: as free text) in the transaction that files it. The feedback queue connects a receiver that adds it.
feedback_received = _signals.signal("feedback-received")

#: Sent with ``campaign_id`` when outbox rows of a campaign are deleted (never-sent rows discarded after
#: the content changed while paused). Summaries of the outbox kept elsewhere (report rollups) drop theirs.
outbox_rows_removed = _signals.signal("outbox-rows-removed")

#: Sent with ``contact_id`` and ``channel`` when a person's consent on a channel is withdrawn (an opt-out:
#: STOP, Twilio's 21610, an officer's edit, an import). The outbox connects a receiver that cancels, in the
#: same transaction, everything still waiting for the person on that channel.
consent_withdrawn = _signals.signal("consent-withdrawn")
