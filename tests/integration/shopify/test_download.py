"""Bulk result files downloaded from the emulator's storage host over HTTP while it cuts them."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from neanelu.ingest.queries import Phase, bulk_query
from neanelu.shopify.bulk import start_bulk_query, wait_for_operation
from neanelu.shopify.download import DownloadProgress, stream_file
from neanelu.shopify.errors import TransientError
from neanelu.shopify.graphql import AdminClient, ShopEndpoint
from shopify_emulator.config import CatalogShape, EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread

SHOP = "flaky"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    # About 12 MB of core file: the size of the drill that never finished.
    config = EmulatorConfig(
        shops=[ShopConfig(name=SHOP, products=6000, seed=11)],
        catalog=CatalogShape(variants_mean=3.0, variants_max=12, locations=2),
        bulk_dir=str(tmp_path_factory.mktemp("bulk")),
    )
    with start_in_thread(config) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def _control(
    http: httpx.AsyncClient, emulator: RunningEmulator, method: str, path: str, **kw: Any
) -> httpx.Response:
    url = f"{emulator.base_url}/_emulator/shops/{SHOP}{path}"
    response = await http.request(method, url, **kw)
    response.raise_for_status()
    return response


@pytest.fixture
async def core_file(
    emulator: RunningEmulator, http: httpx.AsyncClient
) -> AsyncIterator[tuple[str, int, str]]:
    """The core file's signed URL, its size, and the sha256 of an uncut download."""
    await _control(http, emulator, "DELETE", "/faults")
    token = (await _control(http, emulator, "POST", "/tokens", json={})).json()["access_token"]
    endpoint = ShopEndpoint(f"{SHOP}.myshopify.com", "2026-01", emulator.base_url)
    client = AdminClient(http, endpoint, token)
    operation = await wait_for_operation(
        client, await start_bulk_query(client, bulk_query(Phase.CORE, None))
    )
    assert operation.url is not None
    whole = await _download(http, operation.url)
    yield operation.url, operation.file_size, hashlib.sha256(whole).hexdigest()
    await _control(http, emulator, "DELETE", "/faults")


async def _download(http: httpx.AsyncClient, url: str, **kw: Any) -> bytes:
    out = bytearray()
    async for chunk in stream_file(http, url, **kw):
        out += chunk
    return bytes(out)


async def _cut_every(http: httpx.AsyncClient, emulator: RunningEmulator, size: int) -> None:
    # No count: every response is cut after `size` bytes, so each resume is cut again `size`
    # bytes further on.
    await _control(
        http,
        emulator,
        "POST",
        "/faults",
        json={"kind": "reset_download", "params": {"after_bytes": size}},
    )


async def test_a_file_cut_every_megabyte_downloads_to_the_end(
    emulator: RunningEmulator, http: httpx.AsyncClient, core_file: tuple[str, int, str]
) -> None:
    url, size, digest = core_file
    assert size > 11_000_000
    await _cut_every(http, emulator, 1_000_000)
    progress = DownloadProgress()
    body = await _download(http, url, progress=progress)
    assert len(body) == size
    assert hashlib.sha256(body).hexdigest() == digest
    assert progress.resumes == size // 1_000_000
    assert progress.bytes_read == size


async def test_cuts_after_progress_do_not_use_the_failure_budget(
    emulator: RunningEmulator, http: httpx.AsyncClient, core_file: tuple[str, int, str]
) -> None:
    url, size, digest = core_file
    await _cut_every(http, emulator, 512 * 1024)
    progress = DownloadProgress()
    # Some twenty-five cuts against a budget of two failures without progress.
    body = await _download(http, url, progress=progress, max_idle_failures=2)
    assert hashlib.sha256(body).hexdigest() == digest
    assert progress.resumes == size // (512 * 1024)


async def test_a_host_that_gives_no_bytes_ends_the_download_with_the_reason(
    emulator: RunningEmulator, http: httpx.AsyncClient, core_file: tuple[str, int, str]
) -> None:
    url, _, _ = core_file
    await _cut_every(http, emulator, 0)
    with pytest.raises(TransientError, match=r"stopped making progress at byte 0: 3 failures"):
        await _download(http, url, max_idle_failures=2)


async def test_the_time_without_progress_is_budgeted_too(
    emulator: RunningEmulator, http: httpx.AsyncClient, core_file: tuple[str, int, str]
) -> None:
    url, _, _ = core_file
    await _cut_every(http, emulator, 0)
    with pytest.raises(TransientError, match=r"stopped making progress at byte 0: 2 failures"):
        await _download(http, url, max_idle_failures=100, max_idle_s=0.1)
