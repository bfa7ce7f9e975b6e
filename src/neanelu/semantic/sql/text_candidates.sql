-- The full-text side of a hybrid search: products whose document matches the query, ranked, with
-- the matched lexemes and the weights (fields) they matched in. Composed with psycopg.sql before
-- it runs: deleted is the deleted-documents condition, w the filters' condition.
SELECT d.product_shopify_id, ts_rank_cd(d.document, q.tsq) AS score,
  ARRAY(SELECT u.lexeme FROM unnest(d.document) u
        WHERE u.lexeme = ANY(q.terms) ORDER BY u.lexeme) AS terms,
  ARRAY(SELECT DISTINCT w FROM unnest(d.document) u, unnest(u.weights) w
        WHERE u.lexeme = ANY(q.terms) ORDER BY w) AS weights
FROM (SELECT websearch_to_tsquery(%s::regconfig, %s) AS tsq,
             tsvector_to_array(to_tsvector(%s::regconfig, %s)) AS terms) q,
     search_documents d
JOIN products p ON p.shop_id = d.shop_id AND p.shopify_id = d.product_shopify_id
WHERE d.shop_id = %s AND d.document @@ q.tsq AND {deleted} AND {w}
ORDER BY 2 DESC, d.product_shopify_id
LIMIT %s
