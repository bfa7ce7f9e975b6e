-- Many deliveries of one shop in one statement; a webhook id seen before (or twice in the batch)
-- inserts nothing, so only new deliveries come back and only they are queued.
INSERT INTO webhook_inbox (shop_id, webhook_id, event_id, topic, api_version, triggered_at, payload)
SELECT %(shop_id)s, u.webhook_id, u.event_id, u.topic, u.api_version, u.triggered_at, u.payload::jsonb
FROM unnest(
  %(webhook_ids)s::text[], %(event_ids)s::text[], %(topics)s::text[], %(api_versions)s::text[],
  %(triggered_at)s::timestamptz[], %(payloads)s::text[]
) AS u(webhook_id, event_id, topic, api_version, triggered_at, payload)
ON CONFLICT (shop_id, webhook_id) DO NOTHING
RETURNING webhook_id, id
