-- Migration 0014: products that webhooks changed, waiting for the shop's next embedding job.
-- A storm of product webhooks used to queue one embedding job per delivery (one product each, a
-- backlog of single-text jobs behind a shop's group); now each delivery marks its product here in
-- its own transaction, and one job per shop and short window turns the marks into a single job
-- for all of them (`neanelu.handles.queue_product_embedding`).
CREATE TABLE embedding_pending (
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  product_shopify_id bigint NOT NULL,
  marked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (shop_id, product_shopify_id)
);

SELECT app_tenant_isolation('embedding_pending');
GRANT SELECT, INSERT, UPDATE, DELETE ON embedding_pending TO {app_role};
