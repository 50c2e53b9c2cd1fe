-- R_common: helpers every other family uses — raising a rule's error, sizes in words, the
-- primary domain, splitting addresses, and rows by name with a clear "unknown …" error.

CREATE OR REPLACE FUNCTION vmail.fail(code text, msg text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg;
END $$;

CREATE OR REPLACE FUNCTION vmail.size_text(b bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE
		WHEN b >= 1073741824 AND b % 1073741824 = 0 THEN (b / 1073741824) || ' GiB'
		WHEN b >= 1048576 AND b % 1048576 = 0 THEN (b / 1048576) || ' MiB'
		WHEN b >= 1024 AND b % 1024 = 0 THEN (b / 1024) || ' KiB'
		ELSE b || ' bytes' END
$$;

CREATE OR REPLACE FUNCTION vmail.primary_domain_id() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT id FROM vmail.domain WHERE kind = 'primary' $$;

-- A domain is local when it is exactly one label under a configured suffix.
CREATE OR REPLACE FUNCTION vmail.domain_is_local(n text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (
		SELECT 1 FROM unnest((SELECT local_suffixes FROM vmail.settings)) AS s(suffix)
		WHERE length(n) > length(s.suffix) + 1
		  AND right(n, length(s.suffix) + 1) = '.' || s.suffix
		  AND strpos(left(n, length(n) - length(s.suffix) - 1), '.') = 0)
$$;

CREATE OR REPLACE FUNCTION vmail.domain_state_text(state text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE state
		WHEN 'pending_registration' THEN 'is awaiting registration'
		WHEN 'pending_proof' THEN 'is awaiting ownership proof'
		WHEN 'suspended' THEN 'is suspended'
		ELSE 'is ' || state END
$$;

-- Split "local@domain" at the last '@', lower-cased; raises VM400 with the reason.
CREATE OR REPLACE FUNCTION vmail.split_address(addr text, allow_catchall boolean DEFAULT false,
	OUT local_part text, OUT domain text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	a text := lower(btrim(addr));
	at int;
BEGIN
	IF a IS NULL OR a = '' THEN
		PERFORM vmail.fail('VM400', 'invalid address "": empty');
	END IF;
	at := length(a) - strpos(reverse(a), '@') + 1;
	IF strpos(a, '@') = 0 THEN
		PERFORM vmail.fail('VM400', format('invalid address "%s": no domain', addr));
	END IF;
	local_part := left(a, at - 1);
	domain := substr(a, at + 1);
	IF NOT vmail.valid_domain_name(domain) THEN
		PERFORM vmail.fail('VM400', format('invalid address "%s": bad domain "%s"', addr, domain));
	END IF;
	IF local_part = '' AND allow_catchall THEN
		RETURN;
	END IF;
	IF NOT vmail.valid_local_part(local_part) THEN
		PERFORM vmail.fail('VM400', format('invalid address "%s": bad local part "%s"', addr, local_part));
	END IF;
END $$;

CREATE OR REPLACE FUNCTION vmail.domain_row(p_name text) RETURNS vmail.domain
LANGUAGE plpgsql STABLE AS $$
DECLARE
	d vmail.domain;
BEGIN
	SELECT * INTO d FROM vmail.domain WHERE name = lower(p_name);
	IF NOT FOUND THEN
		PERFORM vmail.fail('VM404', format('unknown domain "%s"', p_name));
	END IF;
	RETURN d;
END $$;

CREATE OR REPLACE FUNCTION vmail.customer_id(p_name text) RETURNS bigint
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

CREATE OR REPLACE FUNCTION vmail.shell_row(p_login text) RETURNS vmail.shell_account
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

CREATE OR REPLACE FUNCTION vmail.account_row(p_address text) RETURNS vmail.mail_account
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

CREATE OR REPLACE FUNCTION vmail.alias_row(p_address text) RETURNS vmail.alias
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

CREATE OR REPLACE FUNCTION vmail.check_hash(p_hash text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_hash IS NOT NULL AND p_hash !~ '^\{(ARGON2ID|ARGON2I|SHA512-CRYPT|SHA256-CRYPT|BLF-CRYPT|MD5-CRYPT|CRYPT)\}\S+$' THEN
		PERFORM vmail.fail('VM400', 'password hash must be {ARGON2ID}, {ARGON2I}, {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {MD5-CRYPT} or {CRYPT} followed by the hash');
	END IF;
	RETURN p_hash;
END $$;
