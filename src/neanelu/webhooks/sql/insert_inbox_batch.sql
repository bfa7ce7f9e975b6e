-- Many deliveries of one shop in one statement, passed as one JSON array whose payloads are the
-- raw bodies as they came (no per-element escaping on the way). A webhook id seen before (or
-- twice in the batch) inserts nothing, so only new deliveries come back and only they are queued.
INSERT INTO webhook_inbox (shop_id, webhook_id, event_id, topic, api_version, triggered_at, payload)
SELECT %(shop_id)s, d.webhook_id, d.event_id, d.topic, d.api_version, d.triggered_at, d.payload
FROM jsonb_to_recordset(%(deliveries)s::jsonb) AS d(
  webhook_id text, event_id text, topic text, api_version text, triggered_at timestamptz,
  payload jsonb
)
ON CONFLICT (shop_id, webhook_id) DO NOTHING
RETURNING webhook_id, id
