DROP FUNCTION app_batch_uuidv7(bigint, bigint, bigint);
