-- The vector side of a hybrid search: the nearest products to the query's embedding, under the
-- catalog's filters. Composed with psycopg.sql before it runs: t is the vector type of the
-- model's dimension, m and d the model and dimension as literals, w the filters' condition.
SELECT e.product_shopify_id, 1 - (e.embedding::{t} <=> %s::{t}) AS similarity
FROM embeddings e
JOIN products p ON p.shop_id = e.shop_id AND p.shopify_id = e.product_shopify_id
WHERE e.shop_id = %s AND e.model = {m} AND e.dimension = {d} AND {w}
ORDER BY e.embedding::{t} <=> %s::{t}
LIMIT %s
