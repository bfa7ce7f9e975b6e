-- Migration 0003: ids for the rows a bulk merge inserts. uuidv7() reads the kernel's random source
-- once per row (3 us each on servers built without OpenSSL), which cost a 1M-product sync half a
-- minute; a batch draws its randomness once instead.
-- A UUIDv7 (RFC 9562): `hi` carries the batch's unix milliseconds, the version and 12 random bits;
-- `lo` the variant and 30 random bits, and the row's line number in its bulk file fills bits 30-61
-- as the counter that tells the batch's rows apart (line numbers are unique within a file).
CREATE FUNCTION app_batch_uuidv7(hi bigint, lo bigint, n bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT encode(int8send(hi) || int8send(lo | ((n & 4294967295) << 30)), 'hex')::uuid
$$;
GRANT EXECUTE ON FUNCTION app_batch_uuidv7(bigint, bigint, bigint) TO {app_role};
