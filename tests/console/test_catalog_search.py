"""The catalog page's search box without a browser: the query is embedded, then searched under the
shop's tenant scope; a query of spaces is refused before anything is embedded."""

from __future__ import annotations

from neanelu.db.pool import tenant_scope
from neanelu.runtime import Runtime
from neanelu.search.providers import provider_for
from neanelu.semantic.service import embed_products
from neanelu.web.console.catalog_search import by_meaning
from neanelu.web.console.reads import ProductFilter
from tests.factories import create_shop
from tests.integration.search.catalog import insert_catalog


async def test_the_search_box_finds_products_by_meaning(runtime: Runtime) -> None:
    shop = await create_shop(runtime.pool, "boxes.myshopify.com")
    async with tenant_scope(runtime.pool, shop) as conn:
        ids = await insert_catalog(conn, shop)
    provider = provider_for(runtime.settings)
    await embed_products(runtime.pool, provider, shop, source="manual")

    found = await by_meaning(runtime, shop, "boots for walking in the mountains", ProductFilter())
    assert found.error is None
    assert found.model == provider.model
    assert found.hits[0].product_id == ids[0]
    assert found.hits[0].vector is not None

    blank = await by_meaning(runtime, shop, "   ", ProductFilter())
    assert blank.error == "The search needs more than spaces."
    assert blank.hits == []
