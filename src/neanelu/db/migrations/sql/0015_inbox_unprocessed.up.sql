-- Migration 0015: the shop's waiting deliveries, found without reading its whole inbox.
-- A `webhooks.process` job applies its own deliveries and the shop's other waiting catalog ones
-- (`webhooks.repository.unprocessed_with_waiting`): under a storm over many shops the ingress
-- batches carry one or two deliveries per shop, and one job per batch left a backlog of tiny jobs.
-- The index holds only the rows not yet applied, so it stays small however long the inbox grows.
CREATE INDEX webhook_inbox_unprocessed ON webhook_inbox (shop_id, id) WHERE processed_at IS NULL;
