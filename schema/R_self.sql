-- R_self: self-service (vmailctl --as, the web panel): what a shell account may do to its own
-- aliases and free mail accounts, within the self-service limits.  The caller has verified
-- the password (self_auth gives the hash); these functions check ownership and R9, and record
-- "self:<login>".  SECURITY DEFINER: the panel's role may execute these and nothing else.

CREATE OR REPLACE FUNCTION vmail.self_begin(p_login text) RETURNS vmail.shell_account
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account := vmail.shell_row(p_login);
BEGIN
	IF s.state = 'suspended' THEN
		PERFORM vmail.fail('VMR09', format('R9: shell account %s is suspended', s.login));
	END IF;
	PERFORM set_config('vmail.actor', 'self:' || s.login, true);
	RETURN s;
END $$;

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

-- The stored hash of an active shell account, for the caller to verify; NULL otherwise.
CREATE OR REPLACE FUNCTION vmail.self_auth(p_login text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
	SELECT password FROM vmail.shell_account WHERE login = lower(p_login) AND state = 'active'
$$;

-- After a successful login with a legacy hash: store the new Argon2id hash, but only if the
-- old one is still current (a concurrent change wins).
CREATE OR REPLACE FUNCTION vmail.self_rehash(p_login text, p_old_hash text, p_new_hash text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
BEGIN
	PERFORM vmail.self_begin(p_login);
	UPDATE vmail.shell_account SET password = vmail.check_hash(p_new_hash)
	 WHERE login = lower(p_login) AND password = p_old_hash;
	RETURN FOUND;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_overview(p_login text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.shell_row(p_login);
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
			'verify_token', d.verify_token) ORDER BY d.name) FROM vmail.domain d WHERE d.customer_id = s.customer_id), '[]'),
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

CREATE OR REPLACE FUNCTION vmail.self_alias_add(p_login text, p_address text, p_target text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
BEGIN
	RETURN vmail.alias_add(p_address, ARRAY[p_target], true, s.login);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_alias_set(p_login text, p_address text, p_target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.alias := vmail.self_alias_row(s, p_address);
BEGIN
	PERFORM vmail.alias_set(a.address, ARRAY[p_target]);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_alias_del(p_login text, p_address text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.alias := vmail.self_alias_row(s, p_address);
BEGIN
	DELETE FROM vmail.alias WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_add(p_login text, p_address text, p_password_hash text, p_quota bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
BEGIN
	RETURN vmail.account_add(p_address, 'free', s.login, p_password_hash, p_quota);
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_passwd(p_login text, p_address text, p_password_hash text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	UPDATE vmail.mail_account SET password = vmail.check_hash(p_password_hash) WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_resize(p_login text, p_address text, p_quota bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	IF p_quota IS NULL OR p_quota <= 0 THEN
		PERFORM vmail.fail('VM400', 'quota must be positive');
	END IF;
	UPDATE vmail.mail_account SET quota = p_quota WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_account_del(p_login text, p_address text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	DELETE FROM vmail.mail_account WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.self_passwd(p_login text, p_password_hash text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
BEGIN
	IF p_password_hash IS NULL THEN
		PERFORM vmail.fail('VM400', 'a new password is required');
	END IF;
	UPDATE vmail.shell_account SET password = vmail.check_hash(p_password_hash) WHERE id = s.id;
END $$;
