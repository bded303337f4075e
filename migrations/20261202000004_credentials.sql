-- Credentials that end. A browser session is valid only while its user's session_epoch is the
-- one it signed in under: a password reset, a disable or a role change bumps it in the same
-- UPDATE, which ends every session of that user (enabling them again does not revive one).
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;

-- API tokens may expire (NULL: never) and record when they were last used (at most once a
-- minute), so admins can tell live tokens from forgotten ones before revoking.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;

-- The console lists tokens newest first.
CREATE INDEX api_tokens_by_created ON api_tokens (created_at, id);
