-- 004_admin: administration functions (vmailctl) and self-service functions (vmailctl --as,
-- the web panel).  They take names, not ids, and leave every rule to the triggers of
-- 002_rules.sql; what they add is clear errors for unknown names and the audit actor.

CREATE FUNCTION vmail.customer_id(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	i bigint;
BEGIN
	SELECT id INTO i FROM vmail.customer WHERE name = lower(p_name);
	IF i IS NULL THEN
		PERFORM vmail.fail('VM404', format('unknown customer "%s"', p_name));
	END IF;
	RETURN i;
END $$;

CREATE FUNCTION vmail.shell_row(p_login text) RETURNS vmail.shell_account
LANGUAGE plpgsql STABLE AS $$
DECLARE
	s vmail.shell_account;
BEGIN
	SELECT * INTO s FROM vmail.shell_account WHERE login = lower(p_login);
	IF NOT FOUND THEN
		PERFORM vmail.fail('VM404', format('unknown shell account "%s"', p_login));
	END IF;
	RETURN s;
END $$;

CREATE FUNCTION vmail.account_row(p_address text) RETURNS vmail.mail_account
LANGUAGE plpgsql STABLE AS $$
DECLARE
	a vmail.mail_account;
BEGIN
	PERFORM vmail.split_address(p_address);
	SELECT * INTO a FROM vmail.mail_account WHERE address = lower(btrim(p_address));
	IF NOT FOUND THEN
		PERFORM vmail.fail('VM404', format('unknown mail account "%s"', p_address));
	END IF;
	RETURN a;
END $$;

CREATE FUNCTION vmail.alias_row(p_address text) RETURNS vmail.alias
LANGUAGE plpgsql STABLE AS $$
DECLARE
	a vmail.alias;
BEGIN
	PERFORM vmail.split_address(p_address, true);
	SELECT * INTO a FROM vmail.alias WHERE address = lower(btrim(p_address));
	IF NOT FOUND THEN
		PERFORM vmail.fail('VM404', format('unknown alias "%s"', p_address));
	END IF;
	RETURN a;
END $$;

CREATE FUNCTION vmail.check_hash(p_hash text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_hash IS NOT NULL AND p_hash !~ '^\{(ARGON2ID|ARGON2I|SHA512-CRYPT|SHA256-CRYPT|BLF-CRYPT|MD5-CRYPT|CRYPT)\}\S+$' THEN
		PERFORM vmail.fail('VM400', 'password hash must be {ARGON2ID}, {ARGON2I}, {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {MD5-CRYPT} or {CRYPT} followed by the hash');
	END IF;
	RETURN p_hash;
END $$;

------------------------------------------------------------------------------------------
-- Customers

CREATE FUNCTION vmail.customer_add(p_name text, p_display text DEFAULT '') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	i bigint;
BEGIN
	IF p_name IS NULL OR lower(p_name) !~ '^[a-z0-9][a-z0-9._-]{0,62}$' THEN
		PERFORM vmail.fail('VM400', format('invalid customer name "%s": use letters, digits, ".", "_" or "-"', p_name));
	END IF;
	IF EXISTS (SELECT 1 FROM vmail.customer WHERE name = lower(p_name)) THEN
		PERFORM vmail.fail('VM409', format('customer %s already exists', lower(p_name)));
	END IF;
	INSERT INTO vmail.customer (name, display_name) VALUES (lower(p_name), coalesce(p_display, ''))
	RETURNING id INTO i;
	RETURN i;
END $$;

CREATE FUNCTION vmail.customer_del(p_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	c bigint := vmail.customer_id(p_name);
	n int;
BEGIN
	SELECT count(*) INTO n FROM vmail.shell_account WHERE customer_id = c;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('customer %s still has %s shell accounts; delete them first', lower(p_name), n));
	END IF;
	SELECT count(*) INTO n FROM vmail.domain WHERE customer_id = c;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('customer %s still has %s domains; delete them first', lower(p_name), n));
	END IF;
	SELECT count(*) INTO n FROM vmail.mail_account WHERE customer_id = c;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('customer %s still has %s paid mail accounts; delete them first', lower(p_name), n));
	END IF;
	DELETE FROM vmail.customer WHERE id = c;
END $$;

------------------------------------------------------------------------------------------
-- Shell accounts

CREATE FUNCTION vmail.shell_add(p_customer text, p_login text, p_uid integer, p_gid integer,
	p_home text, p_password_hash text, p_disk_limit bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	c bigint := vmail.customer_id(p_customer);
	i bigint;
BEGIN
	IF NOT vmail.valid_login(lower(p_login)) THEN
		PERFORM vmail.fail('VM400', format('invalid login "%s": 1-32 characters, a-z 0-9 _ -, not starting with a digit or "-"', p_login));
	END IF;
	IF EXISTS (SELECT 1 FROM vmail.shell_account WHERE login = lower(p_login)) THEN
		PERFORM vmail.fail('VM409', format('shell account %s already exists', lower(p_login)));
	END IF;
	IF EXISTS (SELECT 1 FROM vmail.shell_account WHERE uid = p_uid) THEN
		PERFORM vmail.fail('VM409', format('uid %s already belongs to shell account %s', p_uid,
			(SELECT login FROM vmail.shell_account WHERE uid = p_uid)));
	END IF;
	IF p_uid IS NULL OR p_uid <= 0 OR p_gid IS NULL OR p_gid <= 0 THEN
		PERFORM vmail.fail('VM400', 'uid and gid must be positive (mail never runs as root)');
	END IF;
	IF p_home IS NULL OR p_home !~ '^/[^[:cntrl:]]*$' THEN
		PERFORM vmail.fail('VM400', format('invalid home "%s": an absolute path', p_home));
	END IF;
	IF p_disk_limit IS NULL OR p_disk_limit <= 0 THEN
		PERFORM vmail.fail('VM400', 'disk limit must be positive');
	END IF;
	INSERT INTO vmail.shell_account (customer_id, login, uid, gid, home, password, disk_limit)
	VALUES (c, lower(p_login), p_uid, p_gid, p_home, vmail.check_hash(p_password_hash), p_disk_limit)
	RETURNING id INTO i;
	RETURN i;
END $$;

-- keys: disk_limit, alias_limit ('default' = the settings' limit), state, mail_domain ('' = none),
-- password, home.
CREATE FUNCTION vmail.shell_set(p_login text, p_key text, p_value text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account := vmail.shell_row(p_login);
	d vmail.domain;
BEGIN
	CASE p_key
	WHEN 'disk_limit' THEN
		IF p_value !~ '^[0-9]{1,18}$' OR p_value::bigint <= 0 THEN
			PERFORM vmail.fail('VM400', format('invalid disk limit "%s"', p_value));
		END IF;
		UPDATE vmail.shell_account SET disk_limit = p_value::bigint WHERE id = s.id;
	WHEN 'alias_limit' THEN
		IF p_value <> 'default' AND p_value !~ '^[0-9]{1,6}$' THEN
			PERFORM vmail.fail('VM400', format('invalid alias limit "%s"', p_value));
		END IF;
		UPDATE vmail.shell_account SET alias_limit = CASE WHEN p_value = 'default' THEN NULL ELSE p_value::int END WHERE id = s.id;
	WHEN 'state' THEN
		IF p_value NOT IN ('active', 'suspended') THEN
			PERFORM vmail.fail('VM400', format('invalid state "%s": active or suspended', p_value));
		END IF;
		UPDATE vmail.shell_account SET state = p_value WHERE id = s.id;
	WHEN 'mail_domain' THEN
		IF coalesce(p_value, '') = '' THEN
			UPDATE vmail.shell_account SET mail_domain_id = NULL WHERE id = s.id;
		ELSE
			d := vmail.domain_row(p_value);
			IF d.customer_id IS DISTINCT FROM s.customer_id THEN
				PERFORM vmail.r8_check(d, s.customer_id, false);
			END IF;
			UPDATE vmail.shell_account SET mail_domain_id = d.id WHERE id = s.id;
		END IF;
	WHEN 'password' THEN
		UPDATE vmail.shell_account SET password = vmail.check_hash(p_value) WHERE id = s.id;
	WHEN 'home' THEN
		IF p_value IS NULL OR p_value !~ '^/[^[:cntrl:]]*$' THEN
			PERFORM vmail.fail('VM400', format('invalid home "%s": an absolute path', p_value));
		END IF;
		UPDATE vmail.shell_account SET home = p_value WHERE id = s.id;
	ELSE
		PERFORM vmail.fail('VM400', format('unknown shell account setting "%s" (disk_limit, alias_limit, state, mail_domain, password, home)', p_key));
	END CASE;
END $$;

CREATE FUNCTION vmail.shell_del(p_login text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.shell_account WHERE id = (vmail.shell_row(p_login)).id;
END $$;

------------------------------------------------------------------------------------------
-- Domains

-- Local (one label under a configured suffix) start awaiting registration; external ones
-- awaiting ownership proof.  Returns the new state.
CREATE FUNCTION vmail.domain_add(p_customer text, p_name text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	c bigint := vmail.customer_id(p_customer);
	n text := lower(btrim(p_name));
	st text;
BEGIN
	IF NOT vmail.valid_domain_name(n) THEN
		PERFORM vmail.fail('VM400', format('invalid domain name "%s"', p_name));
	END IF;
	INSERT INTO vmail.domain (name, customer_id, kind, state) VALUES (n, c, NULL, NULL)
	RETURNING state INTO st;
	RETURN st;
END $$;

CREATE FUNCTION vmail.domain_set_state(p_name text, p_state text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_row(p_name);
BEGIN
	IF p_state NOT IN ('pending_registration', 'pending_proof', 'active', 'suspended') THEN
		PERFORM vmail.fail('VM400', format('invalid domain state "%s": pending_registration, pending_proof, active or suspended', p_state));
	END IF;
	IF d.kind = 'primary' AND p_state <> 'active' THEN
		PERFORM vmail.fail('VM400', format('the primary domain %s is always active', d.name));
	END IF;
	UPDATE vmail.domain SET state = p_state WHERE id = d.id;
END $$;

CREATE FUNCTION vmail.domain_del(p_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_row(p_name);
	n int;
BEGIN
	IF d.kind = 'primary' THEN
		PERFORM vmail.fail('VM400', format('the primary domain %s cannot be deleted', d.name));
	END IF;
	SELECT count(*) INTO n FROM vmail.address WHERE domain_id = d.id;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('domain %s still has %s addresses; delete them first', d.name, n));
	END IF;
	SELECT count(*) INTO n FROM vmail.shell_account WHERE mail_domain_id = d.id;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('domain %s is the mail domain of %s shell accounts', d.name, n));
	END IF;
	DELETE FROM vmail.domain WHERE id = d.id;
END $$;

------------------------------------------------------------------------------------------
-- Aliases

-- A destination named by a user: a login, a canonical mailbox address, or (administrator
-- aliases only) an address outside our domains.
CREATE FUNCTION vmail.add_target(p_alias bigint, p_pos integer, p_target text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t text := lower(btrim(p_target));
	m record;
	dom text;
BEGIN
	IF t IS NULL OR t = '' THEN
		PERFORM vmail.fail('VM400', 'empty alias destination');
	END IF;
	m := vmail.mailbox_of(t);
	IF m.shell_id IS NULL AND m.account_id IS NULL THEN
		IF strpos(t, '@') = 0 THEN
			PERFORM vmail.fail('VM404', format('unknown mailbox "%s" (no such shell account)', p_target));
		END IF;
		dom := (vmail.split_address(t)).domain;
		IF EXISTS (SELECT 1 FROM vmail.domain WHERE name = dom) THEN
			PERFORM vmail.fail('VM404', format('unknown mailbox "%s"', p_target));
		END IF;
		INSERT INTO vmail.alias_target (alias_id, position, external) VALUES (p_alias, p_pos, t);
	ELSE
		INSERT INTO vmail.alias_target (alias_id, position, shell_account_id, mail_account_id)
		VALUES (p_alias, p_pos, m.shell_id, m.account_id);
	END IF;
END $$;

-- self_service: counts toward the owner's R1 limit and must point at one of its mailboxes.
-- Otherwise an administrator alias (any mailboxes of the customer, or outside addresses),
-- recorded as a grant when it has an owner (R10).
CREATE FUNCTION vmail.alias_add(p_address text, p_targets text[], p_self_service boolean,
	p_owner text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	owner vmail.shell_account;
	i bigint;
	addr text := lower(btrim(p_address));
BEGIN
	IF p_targets IS NULL OR cardinality(p_targets) = 0 THEN
		PERFORM vmail.fail('VM400', format('alias %s needs at least one destination', p_address));
	END IF;
	IF cardinality(p_targets) > 100 THEN
		PERFORM vmail.fail('VM400', format('alias %s: at most 100 destinations', p_address));
	END IF;
	IF p_self_service AND p_owner IS NULL THEN
		PERFORM vmail.fail('VM400', 'a self-service alias needs an owner shell account');
	END IF;
	IF p_owner IS NOT NULL THEN
		owner := vmail.shell_row(p_owner);
	END IF;
	IF left(addr, 1) <> '@' THEN
		PERFORM vmail.split_address(addr);
	END IF;
	INSERT INTO vmail.alias (address, domain_id, local_part, owner_shell_id, self_service)
	VALUES (addr, 0, '', owner.id, p_self_service)
	RETURNING id INTO i;
	FOR n IN 1 .. cardinality(p_targets) LOOP
		PERFORM vmail.add_target(i, n, p_targets[n]);
	END LOOP;
	IF NOT p_self_service AND owner.id IS NOT NULL THEN
		INSERT INTO vmail.grant_log (shell_account_id, login, what, old_value, new_value, granted_by)
		VALUES (owner.id, owner.login, 'admin_alias', NULL, (SELECT address FROM vmail.alias WHERE id = i), vmail.actor());
	END IF;
	RETURN i;
END $$;

CREATE FUNCTION vmail.alias_set(p_address text, p_targets text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	a vmail.alias := vmail.alias_row(p_address);
BEGIN
	IF p_targets IS NULL OR cardinality(p_targets) = 0 THEN
		PERFORM vmail.fail('VM400', format('alias %s needs at least one destination', a.address));
	END IF;
	DELETE FROM vmail.alias_target WHERE alias_id = a.id;
	FOR n IN 1 .. cardinality(p_targets) LOOP
		PERFORM vmail.add_target(a.id, n, p_targets[n]);
	END LOOP;
END $$;

CREATE FUNCTION vmail.alias_del(p_address text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.alias WHERE id = (vmail.alias_row(p_address)).id;
END $$;

------------------------------------------------------------------------------------------
-- Mail accounts

-- kind 'free': p_owner is the shell account; kind 'paid': p_owner is the customer.
CREATE FUNCTION vmail.account_add(p_address text, p_kind text, p_owner text,
	p_password_hash text, p_quota bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account;
	c bigint;
	i bigint;
BEGIN
	IF p_kind NOT IN ('free', 'paid') THEN
		PERFORM vmail.fail('VM400', format('invalid mail account kind "%s": free or paid', p_kind));
	END IF;
	PERFORM vmail.split_address(p_address);
	IF p_quota IS NULL OR p_quota <= 0 THEN
		PERFORM vmail.fail('VM400', 'quota must be positive');
	END IF;
	IF p_kind = 'free' THEN
		s := vmail.shell_row(p_owner);
		c := s.customer_id;
	ELSE
		c := vmail.customer_id(p_owner);
	END IF;
	INSERT INTO vmail.mail_account (address, domain_id, local_part, kind, shell_account_id, customer_id, password, quota)
	VALUES (lower(btrim(p_address)), 0, 'x', p_kind, s.id, c, vmail.check_hash(p_password_hash), p_quota)
	RETURNING id INTO i;
	RETURN i;
END $$;

-- keys: quota, password, state.
CREATE FUNCTION vmail.account_set(p_address text, p_key text, p_value text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	a vmail.mail_account := vmail.account_row(p_address);
BEGIN
	CASE p_key
	WHEN 'quota' THEN
		IF p_value !~ '^[0-9]{1,18}$' OR p_value::bigint <= 0 THEN
			PERFORM vmail.fail('VM400', format('invalid quota "%s"', p_value));
		END IF;
		UPDATE vmail.mail_account SET quota = p_value::bigint WHERE id = a.id;
	WHEN 'password' THEN
		UPDATE vmail.mail_account SET password = vmail.check_hash(p_value) WHERE id = a.id;
	WHEN 'state' THEN
		IF p_value NOT IN ('active', 'suspended') THEN
			PERFORM vmail.fail('VM400', format('invalid state "%s": active or suspended', p_value));
		END IF;
		UPDATE vmail.mail_account SET state = p_value WHERE id = a.id;
	ELSE
		PERFORM vmail.fail('VM400', format('unknown mail account setting "%s" (quota, password, state)', p_key));
	END CASE;
END $$;

CREATE FUNCTION vmail.account_del(p_address text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.mail_account WHERE id = (vmail.account_row(p_address)).id;
END $$;

------------------------------------------------------------------------------------------
-- Grants (R10) and usage

-- what: alias_limit or disk_limit.  The change and the grant are one transaction.
CREATE FUNCTION vmail.grant(p_login text, p_what text, p_value text, p_note text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account := vmail.shell_row(p_login);
	old text;
BEGIN
	IF p_what = 'alias_limit' THEN
		old := coalesce(s.alias_limit, (SELECT alias_limit FROM vmail.settings))::text;
	ELSIF p_what = 'disk_limit' THEN
		old := s.disk_limit::text;
	ELSE
		PERFORM vmail.fail('VM400', format('unknown grant "%s" (alias_limit, disk_limit)', p_what));
	END IF;
	PERFORM vmail.shell_set(p_login, p_what, p_value);
	INSERT INTO vmail.grant_log (shell_account_id, login, what, old_value, new_value, note, granted_by)
	VALUES (s.id, s.login, p_what, old, p_value, coalesce(p_note, ''), vmail.actor());
END $$;

CREATE FUNCTION vmail.usage_set_files(p_login text, p_bytes bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account := vmail.shell_row(p_login);
BEGIN
	IF p_bytes IS NULL OR p_bytes < 0 THEN
		PERFORM vmail.fail('VM400', 'file usage must be zero or more bytes');
	END IF;
	INSERT INTO vmail.files_usage (shell_account_id, bytes) VALUES (s.id, p_bytes)
	ON CONFLICT (shell_account_id) DO UPDATE SET bytes = EXCLUDED.bytes, updated_at = now();
END $$;

------------------------------------------------------------------------------------------
-- Settings

CREATE FUNCTION vmail.setting_set(p_key text, p_value text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	CASE p_key
	WHEN 'alias_limit', 'free_account_limit', 'free_per_domain_limit', 'vmail_uid', 'vmail_gid' THEN
		IF p_value !~ '^[0-9]{1,9}$' THEN
			PERFORM vmail.fail('VM400', format('%s must be a whole number, not "%s"', p_key, p_value));
		END IF;
		EXECUTE format('UPDATE vmail.settings SET %I = $1::integer', p_key) USING p_value;
	WHEN 'subaddress_delimiter', 'primary_domain', 'shell_mail_location', 'free_home_template',
	     'free_mail_location', 'paid_home_template', 'paid_mail_location' THEN
		EXECUTE format('UPDATE vmail.settings SET %I = $1', p_key) USING lower(p_value);
	WHEN 'postmaster_address' THEN
		IF coalesce(p_value, '') = '' THEN
			UPDATE vmail.settings SET postmaster_address = NULL;
		ELSE
			PERFORM vmail.split_address(p_value);
			UPDATE vmail.settings SET postmaster_address = lower(p_value);
		END IF;
	WHEN 'local_suffixes' THEN
		UPDATE vmail.settings SET local_suffixes = regexp_split_to_array(lower(btrim(p_value)), '[,[:space:]]+');
	ELSE
		PERFORM vmail.fail('VM400', format('unknown setting "%s"', p_key));
	END CASE;
END $$;

------------------------------------------------------------------------------------------
-- Self-service: what a shell account may do to its own aliases and free mail accounts,
-- within the self-service limits.  The caller has verified the password (self_auth gives
-- the hash); these functions check ownership and R9, and record "self:<login>".

CREATE FUNCTION vmail.self_begin(p_login text) RETURNS vmail.shell_account
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

CREATE FUNCTION vmail.self_alias_row(s vmail.shell_account, p_address text) RETURNS vmail.alias
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

CREATE FUNCTION vmail.self_account_row(s vmail.shell_account, p_address text) RETURNS vmail.mail_account
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
CREATE FUNCTION vmail.self_auth(p_login text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
	SELECT password FROM vmail.shell_account WHERE login = lower(p_login) AND state = 'active'
$$;

-- After a successful login with a legacy hash: store the new Argon2id hash, but only if the
-- old one is still current (a concurrent change wins).
CREATE FUNCTION vmail.self_rehash(p_login text, p_old_hash text, p_new_hash text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
BEGIN
	PERFORM vmail.self_begin(p_login);
	UPDATE vmail.shell_account SET password = vmail.check_hash(p_new_hash)
	 WHERE login = lower(p_login) AND password = p_old_hash;
	RETURN FOUND;
END $$;

CREATE FUNCTION vmail.self_overview(p_login text) RETURNS text
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

CREATE FUNCTION vmail.self_alias_add(p_login text, p_address text, p_target text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
BEGIN
	RETURN vmail.alias_add(p_address, ARRAY[p_target], true, s.login);
END $$;

CREATE FUNCTION vmail.self_alias_set(p_login text, p_address text, p_target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.alias := vmail.self_alias_row(s, p_address);
BEGIN
	PERFORM vmail.alias_set(a.address, ARRAY[p_target]);
END $$;

CREATE FUNCTION vmail.self_alias_del(p_login text, p_address text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.alias := vmail.self_alias_row(s, p_address);
BEGIN
	DELETE FROM vmail.alias WHERE id = a.id;
END $$;

CREATE FUNCTION vmail.self_account_add(p_login text, p_address text, p_password_hash text, p_quota bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
BEGIN
	RETURN vmail.account_add(p_address, 'free', s.login, p_password_hash, p_quota);
END $$;

CREATE FUNCTION vmail.self_account_passwd(p_login text, p_address text, p_password_hash text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	UPDATE vmail.mail_account SET password = vmail.check_hash(p_password_hash) WHERE id = a.id;
END $$;

CREATE FUNCTION vmail.self_account_resize(p_login text, p_address text, p_quota bigint) RETURNS void
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

CREATE FUNCTION vmail.self_account_del(p_login text, p_address text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
	a vmail.mail_account := vmail.self_account_row(s, p_address);
BEGIN
	DELETE FROM vmail.mail_account WHERE id = a.id;
END $$;

CREATE FUNCTION vmail.self_passwd(p_login text, p_password_hash text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	s vmail.shell_account := vmail.self_begin(p_login);
BEGIN
	IF p_password_hash IS NULL THEN
		PERFORM vmail.fail('VM400', 'a new password is required');
	END IF;
	UPDATE vmail.shell_account SET password = vmail.check_hash(p_password_hash) WHERE id = s.id;
END $$;

------------------------------------------------------------------------------------------
-- Database roles.  vmail_lookup: what vmaild and Dovecot's sql driver need.  vmail_panel:
-- the self-service functions only, so a subverted panel cannot act as the administrator.
-- Roles are cluster-wide; create them only once.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vmail_lookup') THEN
		CREATE ROLE vmail_lookup NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vmail_panel') THEN
		CREATE ROLE vmail_panel NOLOGIN;
	END IF;
END $$;

REVOKE ALL ON SCHEMA vmail FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA vmail FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA vmail REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA vmail TO vmail_lookup, vmail_panel;
GRANT SELECT ON ALL TABLES IN SCHEMA vmail TO vmail_lookup;
GRANT UPDATE, INSERT, DELETE ON vmail.mailbox_usage TO vmail_lookup;
GRANT EXECUTE ON FUNCTION
	vmail.lookup_domain(text), vmail.lookup_alias(text), vmail.lookup_mailbox(text), vmail.lookup_sender(text),
	vmail.passdb(text), vmail.passdb_json(text), vmail.userdb(text), vmail.userdb_effective(text),
	vmail.userdb_json(text), vmail.userdb_list(), vmail.quota_get(text, text, text),
	vmail.quota_apply(text, bigint, bigint), vmail.quota_set(text, bigint, bigint), vmail.quota_unset(text),
	vmail.quota_state(text), vmail.policy_check(text, bigint)
	TO vmail_lookup;
-- The lookup functions call these helpers with the caller's rights.
GRANT EXECUTE ON FUNCTION
	vmail.mailbox_of(text), vmail.split_extension(text, text), vmail.with_ext(text, text),
	vmail.find_address(text), vmail.canonical_address(bigint, bigint), vmail.canonical_login(bigint, bigint),
	vmail.entry_destinations(vmail.address, text), vmail.address_mailboxes(text, boolean),
	vmail.mailbox_facts(text), vmail.account_usage(bigint, bigint), vmail.mailbox_usage_of(bigint, bigint)
	TO vmail_lookup;
GRANT EXECUTE ON FUNCTION
	vmail.self_auth(text), vmail.self_rehash(text, text, text), vmail.self_overview(text),
	vmail.self_alias_add(text, text, text), vmail.self_alias_set(text, text, text), vmail.self_alias_del(text, text),
	vmail.self_account_add(text, text, text, bigint), vmail.self_account_passwd(text, text, text),
	vmail.self_account_resize(text, text, bigint), vmail.self_account_del(text, text), vmail.self_passwd(text, text)
	TO vmail_panel;
