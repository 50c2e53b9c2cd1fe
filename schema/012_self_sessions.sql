-- 012: self-service sessions (issue 15).  The panel's role may no longer read password
-- hashes: vmail.self_login checks a derived hash in the database and issues a random token,
-- stored here only as its SHA-256; every self_* function takes that token.  self_secret
-- makes up login parameters for unknown logins (R_self.sql).  Neither table is granted to
-- anyone: only the owner (and SECURITY DEFINER functions) read them.
CREATE TABLE vmail.self_secret (
	one    boolean PRIMARY KEY DEFAULT true CHECK (one),
	secret bytea NOT NULL CHECK (length(secret) = 32)
);
-- gen_random_uuid (built in since PostgreSQL 13) draws from pg_strong_random: two of them
-- give 244 random bits, without the pgcrypto extension.
INSERT INTO vmail.self_secret (secret)
	SELECT substring(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex') FROM 1 FOR 32);

CREATE TABLE vmail.self_session (
	token_hash       bytea PRIMARY KEY CHECK (length(token_hash) = 32),
	shell_account_id bigint NOT NULL REFERENCES vmail.shell_account ON DELETE CASCADE,
	client           text,
	created_at       timestamptz NOT NULL DEFAULT now(),
	expires_at       timestamptz NOT NULL
);
CREATE INDEX self_session_account ON vmail.self_session (shell_account_id);
CREATE INDEX self_session_expires ON vmail.self_session (expires_at);

-- self_auth handed out hashes; it is gone (R_self.sql no longer defines it).
DROP FUNCTION IF EXISTS vmail.self_auth(text);
