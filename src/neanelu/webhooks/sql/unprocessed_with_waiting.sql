-- A job's own deliveries not yet applied, and up to %(waiting)s more of its shop's waiting catalog
-- deliveries (whichever job names them: that job finds them applied and has nothing left to do).
-- Under a storm over many shops each ingress batch holds a delivery or two per shop, so one job
-- per batch applied 1.4 deliveries on average, a transaction each, and the backlog grew.
-- The waiting ones stop at the shop's first waiting delivery of another topic (an uninstall, a
-- scopes update): whatever came after it is applied after it, as it arrived. RLS keeps all of it
-- to the tenant's shop; the partial index webhook_inbox_unprocessed finds the waiting rows.
WITH fence AS (
  SELECT min(id) AS id
  FROM webhook_inbox
  WHERE processed_at IS NULL AND topic <> ALL (%(catalog)s)
),
own AS (
  SELECT id, webhook_id, event_id, topic, triggered_at, received_at, payload::text AS payload,
    processed_at
  FROM webhook_inbox
  WHERE id = ANY (%(ids)s) AND processed_at IS NULL
),
waiting AS (
  SELECT id, webhook_id, event_id, topic, triggered_at, received_at, payload::text AS payload,
    processed_at
  FROM webhook_inbox
  WHERE processed_at IS NULL
    AND topic = ANY (%(catalog)s)
    AND id <> ALL (%(ids)s)
    AND id < coalesce((SELECT id FROM fence), 9223372036854775807)
  ORDER BY id
  LIMIT %(waiting)s
)
SELECT * FROM own
UNION ALL
SELECT * FROM waiting
ORDER BY id
