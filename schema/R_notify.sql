-- R_notify: tell vmaild's answer cache what changed.  Every table whose rows can change
-- the answer of a cached lookup (domain, alias, mailbox, sender, passdb, userdb) notifies the
-- channel vmail_cache at commit; vmaild LISTENs on a writable server and drops the entries.
-- Quota and policy answers are never cached, so mailbox_usage and files_usage stay silent.
--
-- Payloads (PostgreSQL sends each distinct one once per transaction):
--   domain <name>   the domain's own entry and every alias, mailbox and sender entry whose
--                   key is an address in that domain.  Address answers depend on more than
--                   the row of the address itself (sub-addresses, the catch-all, the
--                   postmaster default, alias targets), so a change anywhere in a domain
--                   drops the whole domain's address entries rather than guessing.
--   login <login>   the passdb and userdb entries of that Dovecot login.
--   all             everything: settings, renamed domains, logins or addresses, moved
--                   accounts (changes whose reach is not worth working out).
--
-- Table            change                              payloads
-- domain           insert, delete, state, alias_of    domain <name> (and of its alias domains)
--                  name                                all
-- alias            any                                 domain <its domain>
-- alias_target     any                                 domain <its alias's domain>
-- mail_account     insert, delete                      domain <its domain>, login <address>
--                  password, quota, state              login <address>
--                  address, domain, kind, owner        all
-- shell_account    insert, delete                      domain <primary>, login <login>,
--                                                      login <login>@<primary>
--                  anything but login                  login <login>, login <login>@<primary>,
--                                                      login <address> of its free accounts
--                  login                               all
-- settings         any                                 all

-- A domain's addresses also answer at its alias domains (issue 20): their entries go too.
CREATE OR REPLACE FUNCTION vmail.cache_notify(p_what text, p_arg text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
	SELECT pg_notify('vmail_cache', CASE WHEN p_arg IS NULL THEN 'all' ELSE p_what || ' ' || p_arg END)
	 WHERE p_what = 'all' OR p_arg IS NOT NULL;
	SELECT pg_notify('vmail_cache', 'domain ' || a.name)
	  FROM vmail.domain a JOIN vmail.domain t ON t.id = a.alias_of
	 WHERE p_what = 'domain' AND t.name = p_arg
$$;

CREATE OR REPLACE FUNCTION vmail.cache_domain_name(p_domain bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT name FROM vmail.domain WHERE id = p_domain
$$;

CREATE OR REPLACE FUNCTION vmail.cache_domain_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.name IS DISTINCT FROM OLD.name THEN
		PERFORM vmail.cache_notify('all');
		RETURN NULL;
	END IF;
	IF TG_OP <> 'INSERT' THEN
		PERFORM vmail.cache_notify('domain', OLD.name);
	END IF;
	IF TG_OP <> 'DELETE' THEN
		PERFORM vmail.cache_notify('domain', NEW.name);
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER cache_notify AFTER INSERT OR UPDATE OR DELETE ON vmail.domain
	FOR EACH ROW EXECUTE FUNCTION vmail.cache_domain_changed();

CREATE OR REPLACE FUNCTION vmail.cache_alias_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		PERFORM vmail.cache_notify('domain', vmail.cache_domain_name(OLD.domain_id));
	END IF;
	IF TG_OP <> 'DELETE' THEN
		PERFORM vmail.cache_notify('domain', vmail.cache_domain_name(NEW.domain_id));
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER cache_notify AFTER INSERT OR UPDATE OR DELETE ON vmail.alias
	FOR EACH ROW EXECUTE FUNCTION vmail.cache_alias_changed();

-- A target deleted with its alias finds no alias any more: the alias's own trigger told.
CREATE OR REPLACE FUNCTION vmail.cache_alias_target_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		PERFORM vmail.cache_notify('domain', (SELECT vmail.cache_domain_name(a.domain_id)
			FROM vmail.alias a WHERE a.id = OLD.alias_id));
	END IF;
	IF TG_OP <> 'DELETE' THEN
		PERFORM vmail.cache_notify('domain', (SELECT vmail.cache_domain_name(a.domain_id)
			FROM vmail.alias a WHERE a.id = NEW.alias_id));
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER cache_notify AFTER INSERT OR UPDATE OR DELETE ON vmail.alias_target
	FOR EACH ROW EXECUTE FUNCTION vmail.cache_alias_target_changed();

CREATE OR REPLACE FUNCTION vmail.cache_mail_account_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF (NEW.address, NEW.domain_id, NEW.local_part, NEW.kind, NEW.shell_account_id,
		    NEW.customer_id) IS DISTINCT FROM (OLD.address, OLD.domain_id, OLD.local_part,
		    OLD.kind, OLD.shell_account_id, OLD.customer_id) THEN
			PERFORM vmail.cache_notify('all');
		ELSE
			PERFORM vmail.cache_notify('login', NEW.address);
		END IF;
		RETURN NULL;
	END IF;
	IF TG_OP = 'DELETE' THEN
		PERFORM vmail.cache_notify('domain', vmail.cache_domain_name(OLD.domain_id));
		PERFORM vmail.cache_notify('login', OLD.address);
	ELSE
		PERFORM vmail.cache_notify('domain', vmail.cache_domain_name(NEW.domain_id));
		PERFORM vmail.cache_notify('login', NEW.address);
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER cache_notify AFTER INSERT OR UPDATE OR DELETE ON vmail.mail_account
	FOR EACH ROW EXECUTE FUNCTION vmail.cache_mail_account_changed();

-- A shell account's state, home, ids and disk limit reach the userdb (and a suspension the
-- passdb) of its free mail accounts too.
CREATE OR REPLACE FUNCTION vmail.cache_shell_account_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account;
	prim text := (SELECT primary_domain FROM vmail.settings);
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.login IS DISTINCT FROM OLD.login THEN
		PERFORM vmail.cache_notify('all');
		RETURN NULL;
	END IF;
	s := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
	PERFORM vmail.cache_notify('login', s.login);
	PERFORM vmail.cache_notify('login', s.login || '@' || prim);
	IF TG_OP = 'UPDATE' THEN
		PERFORM vmail.cache_notify('login', a.address)
		   FROM vmail.mail_account a WHERE a.shell_account_id = s.id AND a.kind = 'free';
	ELSE
		PERFORM vmail.cache_notify('domain', prim);
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER cache_notify AFTER INSERT OR UPDATE OR DELETE ON vmail.shell_account
	FOR EACH ROW EXECUTE FUNCTION vmail.cache_shell_account_changed();

CREATE OR REPLACE FUNCTION vmail.cache_settings_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vmail.cache_notify('all');
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER cache_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vmail.settings
	FOR EACH STATEMENT EXECUTE FUNCTION vmail.cache_settings_changed();
