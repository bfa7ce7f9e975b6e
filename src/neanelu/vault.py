"""The token vault: AES-256-GCM under a versioned key, the key id stored next to each ciphertext.

A key's id is a fingerprint of the key itself, so the id written with a token always names the
exact key that sealed it, and `ENCRYPTION_KEYS_PREVIOUS` may list old keys with or without ids.
The additional data binds each ciphertext to its shop and its kind: a sealed access token copied
into another shop's row, or into the refresh column, no longer opens.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from neanelu.config import Settings, decode_key, previous_keys

_VERSION = b"\x01"
_NONCE_BYTES = 12


class VaultError(Exception):
    """A ciphertext could not be opened (unknown key id, tampering, wrong shop). Never holds the
    token or the key."""


def key_id_of(key: bytes) -> str:
    return "k" + hashlib.sha256(b"neanelu-vault-key-id" + key).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class VaultKey:
    id: str
    material: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Sealed:
    ciphertext: bytes = field(repr=False)
    key_id: str


class TokenVault:
    def __init__(self, current: VaultKey, previous: tuple[VaultKey, ...] = ()) -> None:
        self.current = current
        self._keys: dict[str, AESGCM] = {}
        for key in (current, *previous):
            self._keys.setdefault(key.id, AESGCM(key.material))
            self._keys.setdefault(key_id_of(key.material), AESGCM(key.material))

    def __repr__(self) -> str:
        return f"TokenVault(current={self.current.id!r}, keys={len(self._keys)})"

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVault:
        material = decode_key(settings.encryption_key_256.get_secret_value())
        current = VaultKey(key_id_of(material), material)
        return cls(current, tuple(parse_previous_keys(settings.encryption_keys_previous)))

    @property
    def current_key_id(self) -> str:
        return self.current.id

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def seal(self, token: SecretStr, *, shop_id: UUID, kind: str) -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        aead = self._keys[self.current.id]
        body = aead.encrypt(nonce, token.get_secret_value().encode(), _aad(shop_id, kind))
        return Sealed(_VERSION + nonce + body, self.current.id)

    def open(self, sealed: Sealed, *, shop_id: UUID, kind: str) -> SecretStr:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise VaultError(f"no key with id {sealed.key_id!r} is configured")
        data = sealed.ciphertext
        if len(data) < 1 + _NONCE_BYTES + 16 or data[:1] != _VERSION:
            raise VaultError("sealed token has an unknown format")
        nonce, body = data[1 : 1 + _NONCE_BYTES], data[1 + _NONCE_BYTES :]
        try:
            plain = aead.decrypt(nonce, body, _aad(shop_id, kind))
        except InvalidTag:
            raise VaultError(
                f"sealed {kind} token does not open with key {sealed.key_id!r}"
            ) from None
        return SecretStr(plain.decode())

    def reseal(self, sealed: Sealed, *, shop_id: UUID, kind: str) -> Sealed:
        """The same token under the current key (a no-op copy when it already is)."""
        if sealed.key_id == self.current.id:
            return sealed
        return self.seal(self.open(sealed, shop_id=shop_id, kind=kind), shop_id=shop_id, kind=kind)


def _aad(shop_id: UUID, kind: str) -> bytes:
    return f"neanelu:shop-token:{shop_id}:{kind}".encode()


def parse_previous_keys(value: SecretStr | None) -> list[VaultKey]:
    """`ENCRYPTION_KEYS_PREVIOUS` as vault keys (settings already checked that each decodes)."""
    return [
        VaultKey(key_id or key_id_of(material), material)
        for key_id, material in previous_keys(value)
    ]
