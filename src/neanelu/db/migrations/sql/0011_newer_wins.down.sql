DROP FUNCTION app_newer_wins(timestamptz, timestamptz, timestamptz);
