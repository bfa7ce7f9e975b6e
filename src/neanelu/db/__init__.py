"""PostgreSQL: embedded server, connection pools, the tenant scope, SQL files and migrations."""
