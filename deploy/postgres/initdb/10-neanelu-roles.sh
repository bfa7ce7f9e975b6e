#!/bin/sh
# First start of an empty data directory (the postgres image's /docker-entrypoint-initdb.d contract):
# the owner role that migrations run as, the application role (no superuser, no BYPASSRLS, owns
# nothing), pgvector, and the database owned by the owner. Passwords come from files the OpenBAO
# agent rendered on a tmpfs; they reach psql on stdin, never on a command line.
set -eu
owner_pw=$(cat "${NEANELU_OWNER_PASSWORD_FILE:?}")
app_pw=$(cat "${NEANELU_APP_PASSWORD_FILE:?}")
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v owner_pw="$owner_pw" -v app_pw="$app_pw" <<'SQL'
CREATE ROLE neanelu_owner LOGIN NOSUPERUSER PASSWORD :'owner_pw';
CREATE ROLE neanelu_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'app_pw';
GRANT SET ON PARAMETER session_replication_role TO neanelu_app;
CREATE DATABASE neanelu OWNER neanelu_owner;
\connect neanelu
CREATE EXTENSION IF NOT EXISTS vector;
SQL
