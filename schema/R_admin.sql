-- R_admin: administration functions (vmailctl): customers, shell accounts, aliases, mail
-- accounts and usage.  They take names, not ids, and leave every rule to the triggers of
-- R_rules.sql; what they add is clear errors for bad input and unknown names.

CREATE OR REPLACE FUNCTION vmail.customer_add(p_name text, p_display text DEFAULT '') RETURNS bigint
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

CREATE OR REPLACE FUNCTION vmail.customer_del(p_name text) RETURNS void
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

CREATE OR REPLACE FUNCTION vmail.shell_add(p_customer text, p_login text, p_uid integer, p_gid integer,
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
CREATE OR REPLACE FUNCTION vmail.shell_set(p_login text, p_key text, p_value text) RETURNS void
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

CREATE OR REPLACE FUNCTION vmail.shell_del(p_login text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.shell_account WHERE id = (vmail.shell_row(p_login)).id;
END $$;

-- A destination named by a user: a login, a canonical mailbox address, or (administrator
-- aliases only) an address outside our domains.
CREATE OR REPLACE FUNCTION vmail.add_target(p_alias bigint, p_pos integer, p_target text) RETURNS void
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
CREATE OR REPLACE FUNCTION vmail.alias_add(p_address text, p_targets text[], p_self_service boolean,
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

CREATE OR REPLACE FUNCTION vmail.alias_set(p_address text, p_targets text[]) RETURNS void
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

CREATE OR REPLACE FUNCTION vmail.alias_del(p_address text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.alias WHERE id = (vmail.alias_row(p_address)).id;
END $$;

-- kind 'free': p_owner is the shell account; kind 'paid': p_owner is the customer.
CREATE OR REPLACE FUNCTION vmail.account_add(p_address text, p_kind text, p_owner text,
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
CREATE OR REPLACE FUNCTION vmail.account_set(p_address text, p_key text, p_value text) RETURNS void
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

CREATE OR REPLACE FUNCTION vmail.account_del(p_address text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.mail_account WHERE id = (vmail.account_row(p_address)).id;
END $$;

-- Retired homes deleted at least p_age ago, for `vmailctl mailbox purge`, with the reason
-- (refused) when the path must not be removed as it stands: not an absolute path of plain
-- components; a shell account's home or a directory above one; a live mail account's home,
-- one inside it or above it.  The purge removes nothing of a refused row and keeps it.
-- home is normalised (vmail.path_norm: "//" and a trailing "/", as homes made from a shell
-- home ending in "/" have them), the form the purge accepts, and compared in that form.
CREATE OR REPLACE FUNCTION vmail.retired_due(p_age interval)
RETURNS TABLE (id bigint, address text, home text, uid integer, gid integer, deleted_at timestamptz, refused text)
LANGUAGE sql STABLE AS $$
	SELECT r.id, r.address, h, r.uid, r.gid, r.deleted_at,
		CASE WHEN h !~ '^(/[^/[:cntrl:]]+)+$' OR h ~ '/\.\.?(/|$)'
			THEN 'not an absolute path without . and .. components'
		WHEN EXISTS (SELECT 1 FROM vmail.shell_account s, vmail.path_norm(s.home) o
			WHERE o = h OR left(o, length(h) + 1) = h || '/')
			THEN 'a shell account''s home or a directory above one'
		WHEN EXISTS (SELECT 1 FROM vmail.mail_account a, vmail.path_norm(a.home) o
			WHERE o = h OR left(o, length(h) + 1) = h || '/' OR left(h, length(o) + 1) = o || '/')
			THEN 'the home of a mail account, inside one or above one' END
	FROM vmail.retired_mailbox r, vmail.path_norm(r.home) h
	WHERE r.deleted_at <= now() - p_age
	ORDER BY r.id
$$;

-- A purged (or missing) home leaves the list.
CREATE OR REPLACE FUNCTION vmail.retired_forget(p_id bigint) RETURNS void
LANGUAGE sql AS $$
	DELETE FROM vmail.retired_mailbox WHERE id = p_id
$$;

CREATE OR REPLACE FUNCTION vmail.usage_set_files(p_login text, p_bytes bigint) RETURNS void
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
