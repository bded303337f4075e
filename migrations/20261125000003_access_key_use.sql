-- When each access key last signed a request to the AWS-compatible API (recorded at most once a
-- minute), so admins can tell live keys from forgotten ones before revoking.
ALTER TABLE access_keys ADD COLUMN last_used_at TEXT;
