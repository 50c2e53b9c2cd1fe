-- R_settings: the settings row (SERVICE.md §5): reading it, changing one key, keeping the
-- primary domain row in step, and refusing to delete it.

CREATE OR REPLACE FUNCTION vmail.settings() RETURNS vmail.settings
LANGUAGE sql STABLE AS $$ SELECT * FROM vmail.settings $$;

-- The primary domain row follows settings.primary_domain.
CREATE OR REPLACE FUNCTION vmail.settings_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM vmail.domain WHERE name = NEW.primary_domain AND kind <> 'primary') THEN
		PERFORM vmail.fail('VMR07', format('R7: domain %s is already a customer''s domain', NEW.primary_domain));
	END IF;
	UPDATE vmail.domain SET name = NEW.primary_domain WHERE kind = 'primary';
	IF NOT FOUND THEN
		INSERT INTO vmail.domain (name, customer_id, kind, state, activated_at)
		VALUES (NEW.primary_domain, NULL, 'primary', 'active', now());
	END IF;
	RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER settings_sync AFTER INSERT OR UPDATE OF primary_domain ON vmail.settings
	FOR EACH ROW EXECUTE FUNCTION vmail.settings_sync();

CREATE OR REPLACE FUNCTION vmail.settings_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'VM400', MESSAGE = 'the settings row cannot be deleted';
END $$;
CREATE OR REPLACE TRIGGER settings_guard BEFORE DELETE ON vmail.settings
	FOR EACH ROW EXECUTE FUNCTION vmail.settings_guard();

-- A mail account's home template (vmail.home_expand): %h the shell account's home (free
-- accounts only), %d the domain, %n the local part, %i the account's id.  %i is required: the
-- id is never reused, so a re-created address never lands in a retired account's directory;
-- it must end a component and start it or follow a "." (a local part never ends with one), so
-- that no local part and id run together (%n%i: x with id 12 and x1 with id 2 are both x12)
-- (a template without it is refused rather than silently extended, so that the administrator
-- sees which paths new accounts will get).  The result must be an absolute path without .
-- or .. components, the shape `vmailctl mailbox purge` accepts.
CREATE OR REPLACE FUNCTION vmail.check_home_template(p_key text, p_value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF length(p_value) > 1024 THEN
		PERFORM vmail.fail('VM400', format('%s is longer than 1024 characters', p_key));
	ELSIF p_key = 'paid_home_template' AND strpos(p_value, '%h') > 0 THEN
		PERFORM vmail.fail('VM400', format('%s: a paid account has no shell account, so no %%h: "%s"', p_key, p_value));
	ELSIF p_value !~ '^(/|%h(/|$))' OR p_value ~ '[[:cntrl:]]' THEN
		PERFORM vmail.fail('VM400', format('%s must be an absolute path (starting with / or %%h/) without control characters: "%s"', p_key, p_value));
	ELSIF coalesce(p_value, '') !~ '(^|/|\.)%i(/|$)' THEN
		PERFORM vmail.fail('VM400', format('%s must contain %%i (the account''s id) as a whole path component or after a "." at the end of one (%%n.%%i), so that a re-created address never gets the old holder''s directory and %%n%%i never makes x1 with id 2 the same as x with id 12: "%s"', p_key, p_value));
	ELSIF p_value ~ '(^|/)\.\.?(/|$)' THEN
		PERFORM vmail.fail('VM400', format('%s must not contain . or .. components: "%s"', p_key, p_value));
	END IF;
END $$;

-- A mail location must say the same to Dovecot 2.3 (the userdb's "mail") and 2.4
-- (vmail.mail_location_v24 splits it into settings), so only what both read is admitted:
-- "driver:path" and the options INBOX=, INDEX=, CONTROL=, LAYOUT=.  No %-variables: the two
-- releases spell them differently; "~" is the mailbox's home in both.
CREATE OR REPLACE FUNCTION vmail.check_mail_location(p_key text, p_value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	parts text[] := string_to_array(coalesce(p_value, ''), ':');
	opt text;
BEGIN
	IF length(p_value) > 1024 THEN
		PERFORM vmail.fail('VM400', format('%s is longer than 1024 characters', p_key));
	ELSIF coalesce(array_length(parts, 1), 0) < 2 OR lower(parts[1]) NOT IN ('maildir', 'mbox', 'sdbox', 'mdbox') THEN
		PERFORM vmail.fail('VM400', format('%s must be "driver:path" with driver maildir, mbox, sdbox or mdbox, not "%s"', p_key, p_value));
	ELSIF strpos(p_value, '%') > 0 THEN
		PERFORM vmail.fail('VM400', format('%s: write ~ for the mailbox''s home instead of %%-variables (Dovecot 2.3 and 2.4 spell them differently): "%s"', p_key, p_value));
	ELSIF p_value ~ '[[:space:][:cntrl:]]' THEN
		PERFORM vmail.fail('VM400', format('%s must not contain spaces or control characters', p_key));
	ELSIF parts[2] !~ '^(~(/|$)|/)' THEN
		PERFORM vmail.fail('VM400', format('%s: the path must start with ~/ or /, not "%s"', p_key, parts[2]));
	END IF;
	FOREACH opt IN ARRAY coalesce(parts[3:], '{}') LOOP
		IF opt !~* '^(INBOX|INDEX|CONTROL)=(~(/|$)|/)' AND opt !~* '^LAYOUT=(fs|maildir\+\+|index)$' THEN
			PERFORM vmail.fail('VM400', format('%s: option "%s" is not one of INBOX=path, INDEX=path, CONTROL=path, LAYOUT=fs|maildir++|index', p_key, opt));
		END IF;
	END LOOP;
END $$;

-- One key at a time, each checked; mail_hosts and local_suffixes are lists (trailing dots
-- dropped from host names).
CREATE OR REPLACE FUNCTION vmail.setting_set(p_key text, p_value text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	hosts text[];
	bad text;
BEGIN
	CASE p_key
	WHEN 'alias_limit', 'free_account_limit', 'free_per_domain_limit', 'vmail_uid', 'vmail_gid', 'forward_limit' THEN
		IF p_value !~ '^[0-9]{1,9}$' THEN
			PERFORM vmail.fail('VM400', format('%s must be a whole number, not "%s"', p_key, p_value));
		END IF;
		EXECUTE format('UPDATE vmail.settings SET %I = $1::integer', p_key) USING p_value;
	WHEN 'subaddress_delimiter', 'primary_domain' THEN
		EXECUTE format('UPDATE vmail.settings SET %I = $1', p_key) USING lower(p_value);
	WHEN 'shell_mail_location', 'free_mail_location', 'paid_mail_location' THEN
		PERFORM vmail.check_mail_location(p_key, p_value);
		EXECUTE format('UPDATE vmail.settings SET %I = $1', p_key) USING p_value;
	WHEN 'free_home_template', 'paid_home_template' THEN
		-- Paths keep their case.  Only new accounts use the new value: homes are stored.
		PERFORM vmail.check_home_template(p_key, p_value);
		EXECUTE format('UPDATE vmail.settings SET %I = $1', p_key) USING p_value;
	WHEN 'postmaster_address' THEN
		IF coalesce(p_value, '') = '' THEN
			UPDATE vmail.settings SET postmaster_address = NULL;
		ELSE
			PERFORM vmail.split_address(p_value);
			UPDATE vmail.settings SET postmaster_address = lower(p_value);
		END IF;
	WHEN 'local_suffixes' THEN
		UPDATE vmail.settings SET local_suffixes = regexp_split_to_array(lower(btrim(p_value)), '[,[:space:]]+');
	WHEN 'mail_hosts' THEN
		hosts := ARRAY(SELECT rtrim(h, '.') FROM unnest(regexp_split_to_array(lower(btrim(coalesce(p_value, ''))),
		                                                                      '[,[:space:]]+')) h
		               WHERE h <> '');
		SELECT h INTO bad FROM unnest(hosts) h WHERE NOT vmail.valid_domain_name(h) LIMIT 1;
		IF bad IS NOT NULL THEN
			PERFORM vmail.fail('VM400', format('mail_hosts: "%s" is not a host name', bad));
		END IF;
		UPDATE vmail.settings SET mail_hosts = hosts;
	WHEN 'imaps_port', 'imap_port', 'pop3s_port', 'pop3_port', 'submissions_port', 'submission_port' THEN
		IF p_value !~ '^[0-9]{1,5}$' OR p_value::integer NOT BETWEEN 1 AND 65535 THEN
			PERFORM vmail.fail('VM400', format('%s must be a port number from 1 to 65535, not "%s"', p_key, p_value));
		END IF;
		EXECUTE format('UPDATE vmail.settings SET %I = $1::integer', p_key) USING p_value;
	WHEN 'imap_host', 'pop3_host', 'submission_host', 'web_host' THEN
		-- empty: the primary domain
		IF coalesce(btrim(p_value), '') <> '' AND NOT vmail.valid_domain_name(rtrim(lower(btrim(p_value)), '.')) THEN
			PERFORM vmail.fail('VM400', format('%s: "%s" is not a host name', p_key, p_value));
		END IF;
		EXECUTE format('UPDATE vmail.settings SET %I = $1', p_key)
			USING nullif(rtrim(lower(btrim(coalesce(p_value, ''))), '.'), '');
	WHEN 'client_services' THEN
		hosts := ARRAY(SELECT h FROM unnest(regexp_split_to_array(lower(btrim(coalesce(p_value, ''))),
		                                                          '[,[:space:]]+')) h WHERE h <> '');
		SELECT h INTO bad FROM unnest(hosts) h
		 WHERE h NOT IN ('imaps', 'imap', 'pop3s', 'pop3', 'submissions', 'submission') LIMIT 1;
		IF bad IS NOT NULL THEN
			PERFORM vmail.fail('VM400', format('client_services: "%s" is not one of imaps, imap, pop3s, pop3, submissions, submission', bad));
		END IF;
		UPDATE vmail.settings SET client_services = hosts;
	WHEN 'service_name' THEN
		IF length(btrim(coalesce(p_value, ''))) NOT BETWEEN 1 AND 64 OR p_value ~ '[[:cntrl:]<>&"]' THEN
			PERFORM vmail.fail('VM400', 'service_name must be 1 to 64 characters, without control characters or <>&"');
		END IF;
		UPDATE vmail.settings SET service_name = btrim(p_value);
	ELSE
		PERFORM vmail.fail('VM400', format('unknown setting "%s"', p_key));
	END CASE;
END $$;
