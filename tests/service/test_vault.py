"""The token vault: AES-256-GCM, key ids, binding to shop and kind, rotation over the database."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from pydantic import SecretStr

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.runtime import Runtime
from neanelu.shopify.oauth import TokenGrant
from neanelu.shops import repository, service
from neanelu.shops.key_rotation import rotate_keys
from neanelu.vault import Sealed, TokenVault, VaultError, key_id_of, parse_previous_keys
from tests.service.support import make_settings

OLD_KEY = base64.b64encode(b"o" * 32).decode()
NEW_KEY = base64.b64encode(b"n" * 32).decode()
TOKEN = SecretStr("shpat_0123456789abcdef")


def vault(current: str, previous: str | None = None) -> TokenVault:
    env = {"ENCRYPTION_KEY_256": current}
    if previous:
        env["ENCRYPTION_KEYS_PREVIOUS"] = previous
    return TokenVault.from_settings(make_settings(**env))


def test_seal_and_open() -> None:
    v = vault(OLD_KEY)
    shop = uuid.uuid4()
    sealed = v.seal(TOKEN, shop_id=shop, kind="access")
    assert TOKEN.get_secret_value().encode() not in sealed.ciphertext
    assert sealed.key_id == key_id_of(b"o" * 32)
    assert v.open(sealed, shop_id=shop, kind="access") == TOKEN
    # Nonces are random: the same token never seals to the same bytes.
    assert v.seal(TOKEN, shop_id=shop, kind="access").ciphertext != sealed.ciphertext


def test_ciphertext_is_bound_to_shop_kind_and_integrity() -> None:
    v = vault(OLD_KEY)
    shop = uuid.uuid4()
    sealed = v.seal(TOKEN, shop_id=shop, kind="access")
    with pytest.raises(VaultError):
        v.open(sealed, shop_id=uuid.uuid4(), kind="access")
    with pytest.raises(VaultError):
        v.open(sealed, shop_id=shop, kind="refresh")
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(VaultError):
        v.open(Sealed(bytes(flipped), sealed.key_id), shop_id=shop, kind="access")
    with pytest.raises(VaultError, match="no key"):
        v.open(Sealed(sealed.ciphertext, "k-unknown"), shop_id=shop, kind="access")


def test_no_secret_in_reprs() -> None:
    v = vault(OLD_KEY)
    sealed = v.seal(TOKEN, shop_id=uuid.uuid4(), kind="access")
    grant = TokenGrant(access_token=TOKEN, scopes=("a",), expires_at=None, refresh_token=TOKEN)
    for text in (repr(v), repr(sealed), repr(grant), repr(v.current)):
        assert TOKEN.get_secret_value() not in text
        assert "oooo" not in text


def test_previous_keys_parse_and_errors_do_not_echo_keys() -> None:
    keys = parse_previous_keys(SecretStr(f"v1:{OLD_KEY}, {NEW_KEY}"))
    assert [k.id for k in keys] == ["v1", key_id_of(b"n" * 32)]
    with pytest.raises(ValueError, match="entry 2") as info:
        parse_previous_keys(SecretStr(f"{OLD_KEY},v2:not-a-key-secret"))
    assert "not-a-key-secret" not in str(info.value)


async def test_rotation_reseals_every_token(runtime: Runtime) -> None:
    old = vault(OLD_KEY)
    shop_ids = []
    async with global_scope(runtime.pool) as conn:
        for n in range(3):
            grant = TokenGrant(
                access_token=SecretStr(f"shpat_{n}"),
                scopes=("read_products",),
                expires_at=None,
                refresh_token=SecretStr(f"shprt_{n}"),
            )
            shop_id, _ = await service.store_install(conn, old, f"rot-{n}.myshopify.com", grant)
            shop_ids.append(shop_id)
    new = vault(NEW_KEY, previous=OLD_KEY)
    report = await rotate_keys(runtime.pool, new, batch=2)
    assert (report.resealed, report.failed) == (3, 0)
    only_new = vault(NEW_KEY)
    for n, shop_id in enumerate(shop_ids):
        async with tenant_scope(runtime.pool, shop_id) as conn:
            row = await repository.get(conn, shop_id)
            assert row is not None
            assert row.access_token
            assert row.refresh_token
            assert row.access_token.key_id == new.current_key_id
            opened = only_new.open(row.access_token, shop_id=shop_id, kind="access")
            assert opened.get_secret_value() == f"shpat_{n}"
            refresh = only_new.open(row.refresh_token, shop_id=shop_id, kind="refresh")
            assert refresh.get_secret_value() == f"shprt_{n}"
    again = await rotate_keys(runtime.pool, new)
    assert again.resealed == 0


async def test_rotation_reports_tokens_under_a_missing_key(runtime: Runtime) -> None:
    lost = vault(base64.b64encode(os.urandom(32)).decode())
    async with global_scope(runtime.pool) as conn:
        grant = TokenGrant(access_token=TOKEN, scopes=(), expires_at=None)
        await service.store_install(conn, lost, "lost.myshopify.com", grant)
    report = await rotate_keys(runtime.pool, vault(NEW_KEY))
    assert (report.resealed, report.failed) == (0, 1)
