-- R_route_login: keeps vmail.login (016_login.sql) equal to what vmail.mailbox_facts computed
-- from the base tables, and mailbox_usage.payer_shell_id set.  Statement-level triggers with
-- transition tables on shell_account and mail_account recompute the rows of the accounts a
-- statement touched; a settings change (mail locations, vmail uid/gid, the primary domain)
-- rebuilds all.  vmail.login_rebuild() recomputes everything.

-- The rows of the given shell accounts and mail accounts.  A mail account whose address is a
-- shell account's login at the primary domain has no row: the shell account answers there.
CREATE OR REPLACE FUNCTION vmail.login_rows(p_shells bigint[], p_accounts bigint[])
RETURNS SETOF vmail.login
LANGUAGE sql STABLE AS $$
	SELECT k.key, s.login, s.password, s.state = 'suspended', s.home, st.shell_mail_location,
		s.uid, s.gid, s.disk_limit, s.disk_limit, s.id, NULL::bigint, s.id,
		l.mail_driver, l.mail_path, l.mail_inbox_path, l.mail_index_path, l.mail_control_path,
		l.mailbox_list_layout
	  FROM vmail.shell_account s CROSS JOIN vmail.settings st
	 CROSS JOIN LATERAL (VALUES (s.login), (s.login || '@' || st.primary_domain)) k(key)
	 CROSS JOIN LATERAL vmail.mail_location_v24(st.shell_mail_location, s.home) l
	 WHERE s.id IN (SELECT unnest(p_shells))
	UNION ALL
	SELECT a.address, a.address, a.password,
		a.state = 'suspended' OR coalesce(s.state = 'suspended', false), a.home, m.mail,
		coalesce(s.uid, st.vmail_uid), coalesce(s.gid, st.vmail_gid),
		a.quota, coalesce(s.disk_limit, a.quota), NULL::bigint, a.id, s.id,
		l.mail_driver, l.mail_path, l.mail_inbox_path, l.mail_index_path, l.mail_control_path,
		l.mailbox_list_layout
	  FROM vmail.mail_account a
	  LEFT JOIN vmail.shell_account s ON s.id = a.shell_account_id
	 CROSS JOIN vmail.settings st
	 CROSS JOIN LATERAL (SELECT CASE a.kind WHEN 'free' THEN st.free_mail_location
		ELSE st.paid_mail_location END AS mail) m
	 CROSS JOIN LATERAL vmail.mail_location_v24(m.mail, a.home) l
	 WHERE a.id IN (SELECT unnest(p_accounts))
	   AND NOT EXISTS (SELECT 1 FROM vmail.shell_account o
		WHERE a.address = o.login || '@' || st.primary_domain AND o.login = split_part(a.address, '@', 1))
$$;

CREATE OR REPLACE FUNCTION vmail.login_refresh(p_shells bigint[], p_accounts bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.login WHERE shell_id IN (SELECT unnest(p_shells));
	DELETE FROM vmail.login WHERE account_id IN (SELECT unnest(p_accounts));
	INSERT INTO vmail.login SELECT * FROM vmail.login_rows(p_shells, p_accounts);
END $$;

CREATE OR REPLACE FUNCTION vmail.login_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vmail.login;
	INSERT INTO vmail.login SELECT * FROM vmail.login_rows(
		ARRAY(SELECT id FROM vmail.shell_account), ARRAY(SELECT id FROM vmail.mail_account));
END $$;

-- A shell account's change touches its rows, its mail accounts' (their suspension, uid, gid
-- and limit come from it) and a mail account's row at its name at the primary domain.
CREATE OR REPLACE FUNCTION vmail.login_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	src text := CASE TG_OP WHEN 'INSERT' THEN 'SELECT * FROM new_rows' WHEN 'DELETE' THEN 'SELECT * FROM old_rows'
		ELSE 'SELECT * FROM new_rows UNION ALL SELECT * FROM old_rows' END;
	ids bigint[];
	logins text[];
BEGIN
	PERFORM vmail.relations_lock(); -- R_route.sql
	IF TG_TABLE_NAME = 'mail_account' THEN
		EXECUTE format('SELECT array_agg(DISTINCT id) FROM (%s) x', src) INTO ids;
		PERFORM vmail.login_refresh('{}', ids);
		RETURN NULL;
	END IF;
	EXECUTE format('SELECT array_agg(DISTINCT id), array_agg(DISTINCT login) FROM (%s) x', src) INTO ids, logins;
	PERFORM vmail.login_refresh(ids, ARRAY(
		SELECT a.id FROM vmail.mail_account a WHERE a.shell_account_id IN (SELECT unnest(ids))
		UNION
		SELECT a.id FROM vmail.mail_account a, vmail.settings st
		 WHERE a.address IN (SELECT unnest(logins) || '@' || st.primary_domain)));
	RETURN NULL;
END $$;

SELECT vmail.relations_triggers('login_sync', 'vmail.login_sync', ARRAY['shell_account', 'mail_account']);

CREATE OR REPLACE FUNCTION vmail.login_settings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vmail.relations_lock();
	PERFORM vmail.login_rebuild();
	RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER login_settings AFTER INSERT OR UPDATE OF primary_domain, shell_mail_location,
	free_mail_location, paid_mail_location, vmail_uid, vmail_gid ON vmail.settings
	FOR EACH STATEMENT EXECUTE FUNCTION vmail.login_settings();

-- The payer of a new counter row (016_login.sql).
CREATE OR REPLACE FUNCTION vmail.mailbox_usage_payer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.payer_shell_id := coalesce(NEW.shell_account_id,
		(SELECT a.shell_account_id FROM vmail.mail_account a WHERE a.id = NEW.mail_account_id AND a.kind = 'free'));
	RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER mailbox_usage_payer BEFORE INSERT OR UPDATE OF shell_account_id, mail_account_id
	ON vmail.mailbox_usage FOR EACH ROW EXECUTE FUNCTION vmail.mailbox_usage_payer();

-- Applying this file (a new schema, an upgrade, a changed definition) recomputes every row.
SELECT vmail.login_rebuild();
