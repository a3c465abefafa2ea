"""Encryption of connection passwords at rest."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from refresh.common.errors import Misconfigured


class SecretBox:
    """Fernet (AES + HMAC) under a key derived from ``SECRET_KEY``.

    Deriving the key lets operators set any string as SECRET_KEY (Heroku config vars, a password
    manager) instead of a Fernet-formatted key.
    """

    def __init__(self, secret_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"refresh-service connection passwords",
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise Misconfigured(
                "a stored password cannot be decrypted: SECRET_KEY differs from the one it was "
                "stored with"
            ) from None
