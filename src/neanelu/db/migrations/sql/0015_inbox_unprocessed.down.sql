DROP INDEX webhook_inbox_unprocessed;
