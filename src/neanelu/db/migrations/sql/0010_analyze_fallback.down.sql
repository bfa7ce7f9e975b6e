DROP FUNCTION IF EXISTS app_analyze_catalog(text[]);
