DROP TABLE sync_run_attempts;
