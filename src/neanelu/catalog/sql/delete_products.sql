-- Shopify never brings a deleted product back under the same id, so a deletion always applies.
-- Its time joins the row's version, so every version seen so far stays older than it; a version
-- that claims to be newer is checked against Shopify before it may revive the row. One row per
-- product: the first deletion's time (what applying them in turn would keep) and the latest.
INSERT INTO products AS p (shop_id, shopify_id, shopify_updated_at, deleted_at)
SELECT %(shop_id)s, r.shopify_id, r.latest, r.first
FROM jsonb_to_recordset(%(deletions)s::jsonb) AS r(shopify_id bigint, first timestamptz, latest timestamptz)
ORDER BY r.shopify_id
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  deleted_at = coalesce(p.deleted_at, excluded.deleted_at),
  shopify_updated_at = greatest(p.shopify_updated_at, excluded.shopify_updated_at),
  synced_at = now()
