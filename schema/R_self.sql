-- R_self: self-service (vmailctl --as, the web panel): what a shell account may do to its own
-- aliases and free mail accounts, within the self-service limits.  SECURITY DEFINER: the
-- panel's role may execute the granted ones and nothing else, and reads no password hash.
--
-- Login (issue 15): self_login_params gives the scheme, cost and salt of the account's hash
-- (made-up ones for an unknown login), the caller derives the hash of the typed password
-- with them, and self_login compares the full string here and returns a session token.
-- Every other self_* function takes that token, not a login; the database keeps only its
-- SHA-256 and expiry (012_self_sessions.sql).  A change of password or a suspension ends
-- the account's sessions (self_session_end).  These functions record "self:<login>".

-- The functions below took a login before and take a token now: same types, new names,
-- which CREATE OR REPLACE cannot change.  grants.sql runs afterwards.
DROP FUNCTION IF EXISTS vmail.self_begin(text);
DROP FUNCTION IF EXISTS vmail.self_rehash(text, text, text);
DROP FUNCTION IF EXISTS vmail.self_overview(text);
DROP FUNCTION IF EXISTS vmail.self_alias_add(text, text, text);
DROP FUNCTION IF EXISTS vmail.self_alias_set(text, text, text);
DROP FUNCTION IF EXISTS vmail.self_alias_del(text, text);
DROP FUNCTION IF EXISTS vmail.self_account_add(text, text, text, bigint);
DROP FUNCTION IF EXISTS vmail.self_account_passwd(text, text, text);
DROP FUNCTION IF EXISTS vmail.self_account_resize(text, text, bigint);
DROP FUNCTION IF EXISTS vmail.self_account_del(text, text);
DROP FUNCTION IF EXISTS vmail.self_passwd(text, text);

-- The scheme, cost and salt of a stored hash without the hash itself: what crypt(3) or
-- Argon2 need to derive the same string from the right password.  NULL if not parseable.
CREATE OR REPLACE FUNCTION vmail.hash_setting(p_hash text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE
		WHEN p_hash IS NULL THEN NULL
		-- bcrypt: "$2b$NN$" and 22 characters of salt, the hash follows without a "$"
		WHEN p_hash ~ '^\{(BLF-CRYPT|CRYPT)\}\$2[abxy]?\$' THEN
			substring(p_hash FROM '^(\{[A-Z-]+\}\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{22})')
		-- Argon2 and "$id$[rounds=N$]salt$hash": everything up to the last "$"
		WHEN p_hash ~ '^\{[A-Z0-9-]+\}\$.*\$[^$]+$' THEN regexp_replace(p_hash, '[^$]+$', '')
		-- DES crypt: two characters of salt
		WHEN p_hash ~ '^\{CRYPT\}[./A-Za-z0-9]{13}$' THEN left(p_hash, 9)
		ELSE NULL END
$$;

-- Made-up Argon2id parameters for a login without a usable hash: the cost of the newest
-- Argon2id shell hash (what a real account has), a salt from SHA-256 over the server
-- secret and the login, so the answer is stable and cannot be told from a real one.
CREATE OR REPLACE FUNCTION vmail.self_fake_setting(p_login text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT '{ARGON2ID}$argon2id$v=19$'
		|| coalesce((SELECT substring(password FROM '^\{ARGON2ID\}\$argon2id\$v=19\$(m=[0-9]+,t=[0-9]+,p=1)\$')
			FROM vmail.shell_account WHERE password LIKE '{ARGON2ID}$argon2id$v=19$m=%'
			ORDER BY id DESC LIMIT 1), 'm=65536,t=2,p=1')
		|| '$' || rtrim(encode(substring(sha256((SELECT secret FROM vmail.self_secret)
			|| convert_to(lower(coalesce(p_login, '')), 'UTF8')) FROM 1 FOR 16), 'base64'), '=')
		|| '$'
$$;

-- The parameters to derive a login's hash with: its own for an active account with a
-- usable hash, made-up ones otherwise (same shape, so logins cannot be enumerated).
CREATE OR REPLACE FUNCTION vmail.self_login_params(p_login text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
	SELECT coalesce((SELECT vmail.hash_setting(password) FROM vmail.shell_account
			  WHERE login = lower(p_login) AND state = 'active'),
			vmail.self_fake_setting(p_login))
$$;

-- Compare the derived string with the stored hash (the whole string, exactly); on a match
-- a new session: 32 hex-encoded bytes from two gen_random_uuid() (244 random bits), kept
-- as SHA-256 only, valid p_lifetime seconds (clamped to 1 minute .. 30 days).  NULL when
-- the login is unknown, suspended, has no password or the hash differs.
CREATE OR REPLACE FUNCTION vmail.self_login(p_login text, p_derived text, p_client text, p_lifetime integer)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account;
	tok text;
BEGIN
	-- FOR SHARE: a reset or suspension committing meanwhile is waited for and seen here;
	-- read unlocked, the session would be inserted after its trigger had ended the others.
	SELECT * INTO s FROM vmail.shell_account WHERE login = lower(p_login) AND state = 'active'
	   FOR SHARE;
	IF NOT FOUND OR s.password IS NULL OR p_derived IS NULL OR s.password <> p_derived THEN
		RETURN NULL;
	END IF;
	DELETE FROM vmail.self_session WHERE expires_at <= now();
	tok := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
	INSERT INTO vmail.self_session (token_hash, shell_account_id, client, expires_at)
	VALUES (sha256(decode(tok, 'hex')), s.id, p_client,
		now() + make_interval(secs => least(greatest(coalesce(p_lifetime, 0), 60), 30 * 86400)));
	INSERT INTO vmail.audit_log (actor, client, action, object_kind, object)
	VALUES ('self:' || s.login, p_client, 'login', 'self_session', s.login);
	RETURN tok;
END $$;

-- The shell account of a live session; VM401 for an unknown, malformed or expired token.
CREATE OR REPLACE FUNCTION vmail.self_session_account(p_token text) RETURNS vmail.shell_account
LANGUAGE plpgsql STABLE AS $$
DECLARE
	s vmail.shell_account;
BEGIN
	IF p_token IS NOT NULL AND p_token ~ '^[0-9a-f]{64}$' THEN
		SELECT a.* INTO s FROM vmail.self_session x JOIN vmail.shell_account a ON a.id = x.shell_account_id
		 WHERE x.token_hash = sha256(decode(p_token, 'hex')) AND x.expires_at > now();
		IF FOUND THEN
			RETURN s;
		END IF;
	END IF;
	PERFORM vmail.fail('VM401', 'the session is unknown or has expired; log in again');
	RETURN NULL;
END $$;

-- Every self_* call starts here: the session's account, not suspended, recorded as actor;
-- vmail.session names the session so a password change made in it keeps it.
CREATE OR REPLACE FUNCTION vmail.self_begin(p_token text) RETURNS vmail.shell_account
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account := vmail.self_session_account(p_token);
BEGIN
	IF s.state = 'suspended' THEN
		PERFORM vmail.fail('VMR09', format('R9: shell account %s is suspended', s.login));
	END IF;
	PERFORM set_config('vmail.actor', 'self:' || s.login, true);
	PERFORM set_config('vmail.session', encode(sha256(decode(p_token, 'hex')), 'hex'), true);
	PERFORM set_config('vmail.rehash', '', true);
	RETURN s;
END $$;

-- End a session (logout); unknown tokens are ignored.
CREATE OR REPLACE FUNCTION vmail.self_logout(p_token text, p_client text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	login text;
BEGIN
	IF p_token IS NULL OR p_token !~ '^[0-9a-f]{64}$' THEN
		RETURN;
	END IF;
	DELETE FROM vmail.self_session x USING vmail.shell_account a
	 WHERE x.token_hash = sha256(decode(p_token, 'hex')) AND a.id = x.shell_account_id
	RETURNING a.login INTO login;
	IF login IS NOT NULL THEN
		INSERT INTO vmail.audit_log (actor, client, action, object_kind, object)
		VALUES ('self:' || login, p_client, 'logout', 'self_session', login);
	END IF;
END $$;

-- A new password (own change, administrator reset) or a suspension ends the account's
-- sessions; only the session that made the change itself (vmail.session, set by
-- self_begin) stays, and none on suspension.  A rehash (vmail.rehash, set by self_rehash
-- after self_begin cleared it) is the same password in a new form: no session ends.
CREATE OR REPLACE FUNCTION vmail.self_session_end() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
BEGIN
	IF NEW.state <> 'active' THEN
		DELETE FROM vmail.self_session WHERE shell_account_id = NEW.id;
	ELSIF NEW.password IS DISTINCT FROM OLD.password
	  AND coalesce(current_setting('vmail.rehash', true), '') <> '1' THEN
		DELETE FROM vmail.self_session WHERE shell_account_id = NEW.id
		   AND token_hash IS DISTINCT FROM decode(nullif(current_setting('vmail.session', true), ''), 'hex');
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER self_session_end AFTER UPDATE OF password, state ON vmail.shell_account
	FOR EACH ROW EXECUTE FUNCTION vmail.self_session_end();

CREATE OR REPLACE FUNCTION vmail.self_alias_row(s vmail.shell_account, p_address text) RETURNS vmail.alias
LANGUAGE plpgsql STABLE AS $$
DECLARE
	a vmail.alias := vmail.alias_row(p_address);
BEGIN
	IF a.owner_shell_id IS DISTINCT FROM s.id THEN
		PERFORM vmail.fail('VM403', format('alias %s does not belong to shell account %s', a.address, s.login));
	END IF;
	IF NOT a.self_service THEN
		PERFORM vmail.fail('VM403', format('alias %s was set up by the administrator; ask the administrator to change it', a.address));
	END IF;
	RETURN a;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_row(s vmail.shell_account, p_address text) RETURNS vmail.mail_account
LANGUAGE plpgsql STABLE AS $$
DECLARE
	a vmail.mail_account := vmail.account_row(p_address);
BEGIN
	IF a.shell_account_id IS DISTINCT FROM s.id THEN
		PERFORM vmail.fail('VM403', format('mail account %s does not belong to shell account %s', a.address, s.login));
	END IF;
	RETURN a;
END $$;

-- After a successful login with a legacy hash: store the new Argon2id hash, but only if the
-- one the login matched (p_old, the derived string) is still current: a concurrent change wins.
CREATE OR REPLACE FUNCTION vmail.self_rehash(p_token text, p_old_hash text, p_new_hash text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
	done boolean;
BEGIN
	PERFORM set_config('vmail.rehash', '1', true);
	UPDATE vmail.shell_account SET password = vmail.check_hash(p_new_hash)
	 WHERE id = s.id AND password = p_old_hash AND p_new_hash LIKE '{ARGON2ID}%';
	done := FOUND;
	PERFORM set_config('vmail.rehash', '', true);
	RETURN done;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_overview(p_token text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_session_account(p_token);
	q record;
BEGIN
	SELECT * INTO q FROM vmail.quota_state(s.login);
	RETURN json_build_object(
		'login', s.login,
		'state', s.state,
		'customer', (SELECT name FROM vmail.customer WHERE id = s.customer_id),
		'primary_address', s.login || '@' || (SELECT primary_domain FROM vmail.settings),
		'mail_domain', (SELECT name FROM vmail.domain WHERE id = s.mail_domain_id),
		'disk_limit', s.disk_limit, 'files', q.files, 'mailbox', q.mailbox,
		'total', q.total, 'allocated', q.allocated,
		'alias_limit', coalesce(s.alias_limit, (SELECT alias_limit FROM vmail.settings)),
		'aliases_used', (SELECT count(*) FROM vmail.alias WHERE owner_shell_id = s.id AND counts),
		'free_account_limit', (SELECT free_account_limit FROM vmail.settings),
		'domains', coalesce((SELECT json_agg(json_build_object('name', d.name, 'kind', d.kind, 'state', d.state,
			'verify_token', d.verify_token, 'alias_of', t.name) ORDER BY d.name)
			FROM vmail.domain d LEFT JOIN vmail.domain t ON t.id = d.alias_of WHERE d.customer_id = s.customer_id), '[]'),
		'aliases', coalesce((SELECT json_agg(json_build_object('address', a.address, 'self_service', a.self_service,
			'counts', a.counts, 'destinations', vmail.entry_destinations(e, NULL)) ORDER BY a.address)
			FROM vmail.alias a JOIN vmail.address e ON e.alias_id = a.id
			WHERE a.owner_shell_id = s.id
			   OR (NOT a.self_service AND EXISTS (SELECT 1 FROM vmail.alias_target t LEFT JOIN vmail.mail_account m ON m.id = t.mail_account_id
				WHERE t.alias_id = a.id AND (t.shell_account_id = s.id OR m.shell_account_id = s.id)))), '[]'),
		'accounts', coalesce((SELECT json_agg(json_build_object('address', m.address, 'quota', m.quota, 'state', m.state,
			'usage', coalesce(u.bytes, 0), 'messages', coalesce(u.messages, 0)) ORDER BY m.address)
			FROM vmail.mail_account m LEFT JOIN vmail.mailbox_usage u ON u.mail_account_id = m.id
			WHERE m.shell_account_id = s.id), '[]'))::text;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_alias_add(p_token text, p_address text, p_target text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
BEGIN
	RETURN vmail.alias_add(p_address, ARRAY[p_target], true, s.login);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_alias_set(p_token text, p_address text, p_target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
	a vmail.alias := vmail.self_alias_row(s, p_address);
BEGIN
	PERFORM vmail.alias_set(a.address, ARRAY[p_target]);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_alias_del(p_token text, p_address text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
	a vmail.alias := vmail.self_alias_row(s, p_address);
BEGIN
	DELETE FROM vmail.alias WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_add(p_token text, p_address text, p_password_hash text, p_quota bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
BEGIN
	RETURN vmail.account_add(p_address, 'free', s.login, p_password_hash, p_quota);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_passwd(p_token text, p_address text, p_password_hash text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	UPDATE vmail.mail_account SET password = vmail.check_hash(p_password_hash) WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_resize(p_token text, p_address text, p_quota bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	IF p_quota IS NULL OR p_quota <= 0 THEN
		PERFORM vmail.fail('VM400', 'quota must be positive');
	END IF;
	UPDATE vmail.mail_account SET quota = p_quota WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_del(p_token text, p_address text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	DELETE FROM vmail.mail_account WHERE id = a.id;
END $$;

-- The account's own password: the current one (derived like at login) must match.
CREATE OR REPLACE FUNCTION vmail.self_passwd(p_token text, p_current text, p_password_hash text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_token);
BEGIN
	IF p_password_hash IS NULL THEN
		PERFORM vmail.fail('VM400', 'a new password is required');
	END IF;
	IF s.password IS NULL OR p_current IS DISTINCT FROM s.password THEN
		PERFORM vmail.fail('VM412', 'the current password is wrong');
	END IF;
	UPDATE vmail.shell_account SET password = vmail.check_hash(p_password_hash) WHERE id = s.id;
END $$;

-- The records each domain of the session's customer should publish so that mail programs find
-- the servers (vmail.client_dns_records), for the panel's Mail programs page.
CREATE OR REPLACE FUNCTION vmail.self_client_records(p_token text)
RETURNS TABLE (domain text, name text, type text, value text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_session_account(p_token);
BEGIN
	RETURN QUERY SELECT d.name, r.name, r.type, r.value
	  FROM vmail.domain d
	 CROSS JOIN LATERAL vmail.client_dns_records(d.name) WITH ORDINALITY r(name, type, value, i)
	 WHERE d.customer_id = s.customer_id
	 ORDER BY d.name, r.i;
END $$;
