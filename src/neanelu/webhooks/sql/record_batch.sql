-- One shop's deliveries and the jobs that apply them, in one statement (so a batch is a single
-- round trip: nothing waits for the inbox ids in between). The deliveries come as one JSON array
-- whose payloads are the raw bodies as they came (no per-element escaping on the way). A webhook
-- id seen before (or twice in the batch) inserts nothing, so only new deliveries come back and
-- only they are queued: one outbox row for the shop's ordinary topics and one for its compliance
-- topics (which go to a group of their own), each listing its inbox ids in the order they came.
-- The outbox row is what `TaskHandle.enqueue_in_tx` writes for a DeliveryBatch: its queue, task
-- and options come from the handle (`OutboxJob`); id, group and payload are built here.
WITH inserted AS (
  INSERT INTO webhook_inbox (shop_id, webhook_id, event_id, topic, api_version, triggered_at, payload)
  SELECT %(shop_id)s, d.webhook_id, d.event_id, d.topic, d.api_version, d.triggered_at, d.payload
  FROM jsonb_to_recordset(%(deliveries)s::jsonb) AS d(
    webhook_id text, event_id text, topic text, api_version text, triggered_at timestamptz,
    payload jsonb
  )
  ON CONFLICT (shop_id, webhook_id) DO NOTHING
  RETURNING webhook_id, id, topic
), queued AS (
  INSERT INTO outbox (queue, job_id, group_id, task, payload, options)
  SELECT %(queue)s, 'webhook-' || %(shop)s || '-' || min(i.id),
         CASE WHEN i.compliance THEN %(compliance_group)s ELSE %(shop)s END,
         %(task)s,
         jsonb_build_object('shop_id', %(shop)s, 'inbox_ids', jsonb_agg(i.id ORDER BY i.id)),
         %(options)s::jsonb
  FROM (SELECT id, topic = ANY(%(compliance_topics)s::text[]) AS compliance FROM inserted) AS i
  GROUP BY i.compliance
)
SELECT webhook_id, id FROM inserted
