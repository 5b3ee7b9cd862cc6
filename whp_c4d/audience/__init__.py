"""Contacts, their numbers, the consent ledger, segments, CSV import, erasure and pseudonyms."""
