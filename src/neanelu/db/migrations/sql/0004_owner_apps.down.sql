DROP FUNCTION app_kept_metafields(jsonb, text[]);
DROP TABLE owner_apps;
