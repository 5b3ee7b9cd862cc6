"""Encryption at rest, blind indexes and keyed hashes, all derived from C4D_DATA_KEY.

Each use gets its own key derived with HKDF, so a leaked blind-index key cannot decrypt anything.
Ciphertexts carry a version prefix so the key can be rotated later without guessing formats.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy.types import TypeDecorator

_PREFIX = "v1:"


class DataKeys:
    def __init__(self, master: str):
        if len(master) < 16:
            raise ValueError("C4D_DATA_KEY must be at least 16 characters")
        material = master.encode()
        self.aead = AESGCM(self._derive(material, b"c4d/aes-gcm/v1"))
        self.blind = self._derive(material, b"c4d/blind-index/v1")
        self.suppression = self._derive(material, b"c4d/suppression/v1")
        self.pseudonym = self._derive(material, b"c4d/pseudonym/v1")

    @staticmethod
    def _derive(material: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"whp-c4d", info=info).derive(material)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self.aead.encrypt(nonce, plaintext.encode(), None)
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            raise ValueError("unknown ciphertext version")
        raw = base64.b64decode(token[len(_PREFIX):])
        return self.aead.decrypt(raw[:12], raw[12:], None).decode()

    def blind_index(self, value: str) -> str:
        return hmac.new(self.blind, value.encode(), hashlib.sha256).hexdigest()

    def suppression_hash(self, value: str) -> str:
        return hmac.new(self.suppression, value.encode(), hashlib.sha256).hexdigest()


def keys() -> DataKeys:
    return current_app.extensions["c4d_keys"]


class EncryptedText(TypeDecorator):
    """Text stored as AES-GCM ciphertext; reads give the plaintext back."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else keys().encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else keys().decrypt(value)


def token_hash(token: str) -> str:
    """Unkeyed SHA-256 for high-entropy random tokens (sessions, API tokens, setup links)."""
    return hashlib.sha256(token.encode()).hexdigest()
