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

-- One key at a time, each checked; mail_hosts and local_suffixes are lists (trailing dots
-- dropped from host names).
CREATE OR REPLACE FUNCTION vmail.setting_set(p_key text, p_value text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	hosts text[];
	bad text;
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
	WHEN 'mail_hosts' THEN
		hosts := ARRAY(SELECT rtrim(h, '.') FROM unnest(regexp_split_to_array(lower(btrim(coalesce(p_value, ''))),
		                                                                      '[,[:space:]]+')) h
		               WHERE h <> '');
		SELECT h INTO bad FROM unnest(hosts) h WHERE NOT vmail.valid_domain_name(h) LIMIT 1;
		IF bad IS NOT NULL THEN
			PERFORM vmail.fail('VM400', format('mail_hosts: "%s" is not a host name', bad));
		END IF;
		UPDATE vmail.settings SET mail_hosts = hosts;
	ELSE
		PERFORM vmail.fail('VM400', format('unknown setting "%s"', p_key));
	END CASE;
END $$;
