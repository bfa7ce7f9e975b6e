-- After the metafields are folded (and orphan variants set aside): metafields whose owner has no
-- row in this session's core staging (a product created between the core and metafields
-- snapshots, a variant set aside as an orphan) would be dropped by the merges' left joins; they
-- are quarantined under their own file's line instead. Owners a quarantined core line names are
-- not orphans: their row is kept as stored. %(files)s names the files by stg_meta.source.
-- The owners are found first (one anti-join of the folded owners with the core staging), so the
-- metafield rows are read only for the rare orphans.
WITH orphan AS MATERIALIZED (
  SELECT a.owner_kind, a.owner_id FROM stg_meta_agg a
  WHERE NOT EXISTS (SELECT 1 FROM stg_core s
                    WHERE s.kind = a.owner_kind AND s.shopify_id = a.owner_id)
    AND NOT EXISTS (SELECT 1 FROM stg_protected q
                    WHERE q.kind = a.owner_kind AND q.shopify_id = a.owner_id)
)
INSERT INTO sync_quarantine (shop_id, run_id, phase, line_no, byte_offset, reason, line)
SELECT app_current_shop_id(), %(run_id)s, (%(files)s::text[])[m.source + 1], m.line_no,
       m.byte_offset,
       'orphan: owner ' || CASE m.owner_kind WHEN 'P' THEN 'product ' ELSE 'variant ' END
         || m.owner_id || ' has no row in the core file',
       left(m.entry, 8192)
FROM orphan o
JOIN stg_meta m ON m.owner_kind = o.owner_kind AND m.owner_id = o.owner_id
ON CONFLICT (run_id, phase, line_no) DO NOTHING;
