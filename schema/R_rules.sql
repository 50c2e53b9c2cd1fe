-- R_rules: rules R1–R5, R7 and R8 of SERVICE.md §3 as triggers and row locks, so that every
-- writer — vmailctl, the panel, plain SQL — obeys them and racing writers cannot overshoot a
-- limit.  Each violation raises its own SQLSTATE (VMR01…VMR09) with a message naming rule and
-- numbers.  R6 and R9 at delivery live in R_lookup_postfix.sql and R_lookup_dovecot.sql, R10
-- in R_audit.sql.
--
-- Lock order, everywhere: the owning shell account first, then the domain, both FOR NO KEY
-- UPDATE (which does not conflict with the KEY SHARE locks taken by foreign-key checks).

-- R7 helpers: who holds an address now, in words.
CREATE OR REPLACE FUNCTION vmail.address_holder(p_domain bigint, p_local text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE a.kind
		WHEN 'alias' THEN CASE WHEN p_local = '' THEN 'the catch-all alias' ELSE 'an alias' END
		WHEN 'account' THEN 'a mail account'
		ELSE 'the primary address of shell account ' || (SELECT login FROM vmail.shell_account WHERE id = a.shell_account_id)
		END
	FROM vmail.address a WHERE a.domain_id = p_domain AND a.local_part = p_local
$$;

-- R7 under concurrency: checked under the domain's row lock, so every writer of addresses in
-- one domain queues and the loser sees the winner's committed row (and gets R7, not the
-- alias or mail account table's own unique index).  Callers already hold the owning shell
-- account's lock, so the lock order (shell account, then domain) holds.
CREATE OR REPLACE FUNCTION vmail.r7_check(p_domain bigint, p_local text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	holder text;
BEGIN
	PERFORM 1 FROM vmail.domain WHERE id = p_domain FOR NO KEY UPDATE;
	holder := vmail.address_holder(p_domain, p_local);
	IF holder IS NOT NULL THEN
		PERFORM vmail.fail('VMR07', format('R7: address %s@%s is already %s', p_local,
			(SELECT name FROM vmail.domain WHERE id = p_domain), holder));
	END IF;
END $$;

CREATE OR REPLACE FUNCTION vmail.claim_address(p_domain bigint, p_local text, p_kind text,
	p_alias bigint, p_account bigint, p_shell bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO vmail.address (domain_id, local_part, kind, alias_id, mail_account_id, shell_account_id)
	VALUES (p_domain, p_local, p_kind, p_alias, p_account, p_shell);
EXCEPTION WHEN unique_violation THEN
	-- A racing writer committed the same address between our check and our insert.
	PERFORM vmail.r7_check(p_domain, p_local);
	RAISE;
END $$;

-- R8: may objects of customer p_customer use domain d?
CREATE OR REPLACE FUNCTION vmail.r8_check(d vmail.domain, p_customer bigint, p_allow_primary boolean) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF d.kind = 'primary' THEN
		IF NOT p_allow_primary THEN
			PERFORM vmail.fail('VMR08', format('R8: domain %s is the ISP''s primary domain; only the administrator creates addresses there', d.name));
		END IF;
		RETURN;
	END IF;
	IF p_customer IS DISTINCT FROM d.customer_id THEN
		PERFORM vmail.fail('VMR08', format('R8: domain %s belongs to customer %s, not to customer %s', d.name,
			(SELECT name FROM vmail.customer WHERE id = d.customer_id),
			coalesce((SELECT name FROM vmail.customer WHERE id = p_customer), '(none)')));
	END IF;
	IF d.state <> 'active' THEN
		PERFORM vmail.fail('VMR08', format('R8: domain %s %s', d.name, vmail.domain_state_text(d.state)));
	END IF;
END $$;

-- Domain aliases (issue 20): R8 between the alias domain and its target (the same customer,
-- both active when linked, neither the primary domain), one target per domain (the column),
-- no chains and no alias of itself.  One advisory lock serialises new links, so two racing
-- links (a -> b and b -> c) cannot both pass the chain checks.
CREATE OR REPLACE FUNCTION vmail.domain_alias_before() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	t vmail.domain;
	other text;
BEGIN
	-- a domain's name, kind and customer never change (domain_before), so only a new link is checked
	IF NEW.alias_of IS NULL OR (TG_OP = 'UPDATE' AND NEW.alias_of IS NOT DISTINCT FROM OLD.alias_of) THEN
		RETURN NEW;
	END IF;
	PERFORM pg_advisory_xact_lock(hashtext('vmail.domain.alias_of'));
	SELECT * INTO t FROM vmail.domain WHERE id = NEW.alias_of;
	IF t.id = NEW.id THEN
		PERFORM vmail.fail('VM409', format('domain %s cannot be an alias of itself', NEW.name));
	END IF;
	IF NEW.kind = 'primary' OR t.kind = 'primary' THEN
		PERFORM vmail.fail('VMR08', format('R8: the primary domain %s cannot be an alias domain or a target',
			CASE WHEN NEW.kind = 'primary' THEN NEW.name ELSE t.name END));
	END IF;
	IF NEW.customer_id IS DISTINCT FROM t.customer_id THEN
		PERFORM vmail.fail('VMR08', format('R8: domain %s belongs to customer %s, domain %s to customer %s',
			NEW.name, (SELECT name FROM vmail.customer WHERE id = NEW.customer_id),
			t.name, (SELECT name FROM vmail.customer WHERE id = t.customer_id)));
	END IF;
	IF NEW.state <> 'active' THEN
		PERFORM vmail.fail('VMR08', format('R8: domain %s %s', NEW.name, vmail.domain_state_text(NEW.state)));
	END IF;
	IF t.state <> 'active' THEN
		PERFORM vmail.fail('VMR08', format('R8: domain %s %s', t.name, vmail.domain_state_text(t.state)));
	END IF;
	IF t.alias_of IS NOT NULL THEN
		PERFORM vmail.fail('VM409', format('domain %s is itself an alias of %s: no chains',
			t.name, (SELECT name FROM vmail.domain WHERE id = t.alias_of)));
	END IF;
	SELECT string_agg(a.name, ', ' ORDER BY a.name) INTO other FROM vmail.domain a WHERE a.alias_of = NEW.id;
	IF other IS NOT NULL THEN
		PERFORM vmail.fail('VM409', format('domain %s is the target of the alias domains %s: no chains', NEW.name, other));
	END IF;
	RETURN NEW;
END $$;
-- Named to fire after domain_before (triggers fire by name), which fills in an insert's kind and state.
CREATE OR REPLACE TRIGGER domain_before_alias BEFORE INSERT OR UPDATE ON vmail.domain
	FOR EACH ROW EXECUTE FUNCTION vmail.domain_alias_before();

-- Aliases: R8, R7, R1.
CREATE OR REPLACE FUNCTION vmail.alias_before() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain;
	owner vmail.shell_account;
	used int;
	lim int;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.address <> OLD.address OR NEW.domain_id <> OLD.domain_id OR NEW.local_part <> OLD.local_part
		   OR NEW.self_service <> OLD.self_service OR NEW.owner_shell_id IS DISTINCT FROM OLD.owner_shell_id THEN
			PERFORM vmail.fail('VM400', format('alias %s: address and owner cannot change; delete it and add a new one', OLD.address));
		END IF;
		RETURN NEW;
	END IF;
	-- The address is the input; domain_id and local_part follow from it.
	SELECT s.local_part, s.domain INTO NEW.local_part, d.name FROM vmail.split_address(NEW.address, true) s;
	d := vmail.domain_row(d.name);
	NEW.domain_id := d.id;
	NEW.address := NEW.local_part || '@' || d.name;
	IF NEW.self_service THEN
		SELECT * INTO owner FROM vmail.shell_account WHERE id = NEW.owner_shell_id FOR NO KEY UPDATE;
		NEW.customer_id := owner.customer_id;
	ELSIF NEW.owner_shell_id IS NOT NULL THEN
		SELECT * INTO owner FROM vmail.shell_account WHERE id = NEW.owner_shell_id FOR NO KEY UPDATE;
		NEW.customer_id := owner.customer_id;
	ELSE
		NEW.customer_id := d.customer_id;
	END IF;
	IF d.kind = 'primary' AND NEW.local_part = '' THEN
		PERFORM vmail.fail('VM400', format('a catch-all alias in the primary domain %s is not allowed', d.name));
	END IF;
	PERFORM vmail.r8_check(d, coalesce(NEW.customer_id, d.customer_id), NOT NEW.self_service);
	PERFORM vmail.r7_check(d.id, NEW.local_part);
	IF NEW.self_service AND NEW.local_part NOT IN ('postmaster', 'abuse') THEN
		IF owner.state = 'suspended' THEN
			PERFORM vmail.fail('VMR09', format('R9: shell account %s is suspended', owner.login));
		END IF;
		SELECT count(*) INTO used FROM vmail.alias WHERE owner_shell_id = owner.id AND counts;
		lim := coalesce(owner.alias_limit, (SELECT alias_limit FROM vmail.settings));
		IF used >= lim THEN
			PERFORM vmail.fail('VMR01', format('R1: shell account %s already has %s of %s self-service aliases',
				owner.login, used, lim));
		END IF;
	END IF;
	RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER alias_before BEFORE INSERT OR UPDATE ON vmail.alias
	FOR EACH ROW EXECUTE FUNCTION vmail.alias_before();

CREATE OR REPLACE FUNCTION vmail.alias_after() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vmail.claim_address(NEW.domain_id, NEW.local_part, 'alias', NEW.id, NULL, NULL);
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER alias_after AFTER INSERT ON vmail.alias
	FOR EACH ROW EXECUTE FUNCTION vmail.alias_after();

-- Destinations: same customer; a self-service alias points at exactly one mailbox of its owner.
CREATE OR REPLACE FUNCTION vmail.alias_target_before() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	a vmail.alias;
	t_customer bigint;
	t_owner bigint;
	t_name text;
	ext_domain text;
BEGIN
	SELECT * INTO a FROM vmail.alias WHERE id = NEW.alias_id;
	IF NEW.external IS NOT NULL THEN
		NEW.external := lower(NEW.external);
		IF a.self_service THEN
			PERFORM vmail.fail('VM403', format('alias %s: forwarding to an outside address is for administrator aliases; ask the administrator', a.address));
		END IF;
		ext_domain := substr(NEW.external, length(NEW.external) - strpos(reverse(NEW.external), '@') + 2);
		IF EXISTS (SELECT 1 FROM vmail.domain WHERE name = ext_domain) THEN
			PERFORM vmail.fail('VM400', format('alias %s: %s is in a hosted domain but is not a mailbox', a.address, NEW.external));
		END IF;
		RETURN NEW;
	END IF;
	IF NEW.shell_account_id IS NOT NULL THEN
		SELECT customer_id, id, login || '@' || (SELECT primary_domain FROM vmail.settings)
		  INTO t_customer, t_owner, t_name FROM vmail.shell_account WHERE id = NEW.shell_account_id;
	ELSE
		SELECT customer_id, shell_account_id, address INTO t_customer, t_owner, t_name
		  FROM vmail.mail_account WHERE id = NEW.mail_account_id;
	END IF;
	IF a.self_service THEN
		IF t_owner IS DISTINCT FROM a.owner_shell_id THEN
			PERFORM vmail.fail('VM403', format('alias %s: a self-service alias must point at a mailbox of shell account %s (its own or one of its free mail accounts), not at %s',
				a.address, (SELECT login FROM vmail.shell_account WHERE id = a.owner_shell_id), t_name));
		END IF;
	ELSIF a.customer_id IS NOT NULL AND t_customer <> a.customer_id THEN
		PERFORM vmail.fail('VMR08', format('R8: alias %s belongs to customer %s; mailbox %s belongs to customer %s',
			a.address, (SELECT name FROM vmail.customer WHERE id = a.customer_id), t_name,
			(SELECT name FROM vmail.customer WHERE id = t_customer)));
	END IF;
	RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER alias_target_before BEFORE INSERT OR UPDATE ON vmail.alias_target
	FOR EACH ROW EXECUTE FUNCTION vmail.alias_target_before();

-- Checked at commit: an alias without destinations would make Postfix defer its mail forever.
-- A deferred trigger fires after a self-service function returned, with the caller's rights
-- (the panel's role cannot read vmail.alias); it only reads and raises, so it runs as owner.
CREATE OR REPLACE FUNCTION vmail.alias_has_targets() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	a vmail.alias;
	n int;
	target_alias bigint;
BEGIN
	IF TG_TABLE_NAME = 'alias' THEN
		target_alias := NEW.id;
	ELSIF TG_OP = 'DELETE' THEN
		target_alias := OLD.alias_id;
	ELSE
		target_alias := NEW.alias_id;
	END IF;
	SELECT * INTO a FROM vmail.alias WHERE id = target_alias;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT count(*) INTO n FROM vmail.alias_target WHERE alias_id = a.id;
	IF n = 0 THEN
		PERFORM vmail.fail('VM400', format('alias %s has no destination', a.address));
	ELSIF a.self_service AND n > 1 THEN
		PERFORM vmail.fail('VM400', format('self-service alias %s must have exactly one destination, not %s', a.address, n));
	END IF;
	RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS alias_has_targets ON vmail.alias;
CREATE CONSTRAINT TRIGGER alias_has_targets AFTER INSERT ON vmail.alias
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION vmail.alias_has_targets();
DROP TRIGGER IF EXISTS alias_target_left ON vmail.alias_target;
CREATE CONSTRAINT TRIGGER alias_target_left AFTER DELETE OR INSERT ON vmail.alias_target
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION vmail.alias_has_targets();

-- A mail account's home from a settings template (vmail.check_home_template): %h the shell
-- account's home (without a trailing "/", which would make "//" in every home), %d the
-- domain, %n the local part with each "/" as "_" (a "/" would nest x.1/y@d's home in x@d's;
-- %i keeps x/y and x_y apart), %i the account's id.  One pass, so that a value put in is
-- never read as a template again.
CREATE OR REPLACE FUNCTION vmail.home_expand(p_template text, p_shell_home text, p_domain text,
	p_local text, p_id bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	res text := '';
	i int := 1;
	tok text;
BEGIN
	WHILE i <= length(p_template) LOOP
		tok := substr(p_template, i, 2);
		IF tok IN ('%h', '%d', '%n', '%i') THEN
			res := res || CASE tok WHEN '%h' THEN rtrim(p_shell_home, '/') WHEN '%d' THEN p_domain
				WHEN '%n' THEN replace(p_local, '/', '_') ELSE p_id::text END;
			i := i + 2;
		ELSE
			res := res || substr(p_template, i, 1);
			i := i + 1;
		END IF;
	END LOOP;
	RETURN res;
END $$;

-- Homes by their normalised form, byte order (home_conflict's equality, prefix and ancestor
-- probes).  Built anew each time this file is applied: an index on a function whose
-- definition changed (vmail.path_norm, R_valid.sql) would not be rebuilt by PostgreSQL.
DROP INDEX IF EXISTS vmail.mail_account_home_norm;
CREATE INDEX mail_account_home_norm ON vmail.mail_account ((vmail.path_norm(home)) COLLATE "C");
DROP INDEX IF EXISTS vmail.retired_mailbox_home_norm;
CREATE INDEX retired_mailbox_home_norm ON vmail.retired_mailbox ((vmail.path_norm(home)) COLLATE "C");
DROP INDEX IF EXISTS vmail.shell_account_home_norm;
CREATE INDEX shell_account_home_norm ON vmail.shell_account ((vmail.path_norm(home)) COLLATE "C");

-- Why a new home p_home must not be used, or NULL: it is, lies inside or above a live mail
-- account's home or a retired one (legacy homes have no id: 013 gave john.2024@d's template
-- ".%i", so john@d with id 2024 would land in its Maildir), or is a shell account's home or
-- above one.  Compared normalised (vmail.path_norm); no unique index, since legacy rows may
-- already share a home.
CREATE OR REPLACE FUNCTION vmail.home_conflict(p_home text) RETURNS text
LANGUAGE sql STABLE AS $$
	WITH h AS (SELECT p COLLATE "C" AS p, (p || '/') COLLATE "C" AS lo, (p || '0') COLLATE "C" AS hi,
		vmail.path_ancestors(p)::text[] COLLATE "C" AS up FROM vmail.path_norm(p_home) p)
	-- Each test its own probe of the table's home index (OR-ed in one EXISTS, the planner
	-- guesses a match among the first rows and scans): the home itself, one inside it
	-- (o in [p/, p0) byte-wise, as '0' follows '/'), one of its ancestors.
	SELECT CASE
		WHEN EXISTS (SELECT 1 FROM vmail.mail_account a WHERE vmail.path_norm(a.home) COLLATE "C" = h.p)
		  OR EXISTS (SELECT 1 FROM vmail.mail_account a WHERE vmail.path_norm(a.home) COLLATE "C" = ANY (h.up))
		  OR EXISTS (SELECT 1 FROM vmail.mail_account a
			WHERE vmail.path_norm(a.home) COLLATE "C" >= h.lo AND vmail.path_norm(a.home) COLLATE "C" < h.hi)
			THEN 'a mail account''s home, inside one or above one'
		WHEN EXISTS (SELECT 1 FROM vmail.retired_mailbox r WHERE vmail.path_norm(r.home) COLLATE "C" = h.p)
		  OR EXISTS (SELECT 1 FROM vmail.retired_mailbox r WHERE vmail.path_norm(r.home) COLLATE "C" = ANY (h.up))
		  OR EXISTS (SELECT 1 FROM vmail.retired_mailbox r
			WHERE vmail.path_norm(r.home) COLLATE "C" >= h.lo AND vmail.path_norm(r.home) COLLATE "C" < h.hi)
			THEN 'a deleted mail account''s home (vmailctl mailbox retired), inside one or above one'
		WHEN EXISTS (SELECT 1 FROM vmail.shell_account s WHERE vmail.path_norm(s.home) COLLATE "C" = h.p)
		  OR EXISTS (SELECT 1 FROM vmail.shell_account s
			WHERE vmail.path_norm(s.home) COLLATE "C" >= h.lo AND vmail.path_norm(s.home) COLLATE "C" < h.hi)
			THEN 'a shell account''s home or above one' END
	FROM h
$$;

-- Mail accounts: R8, R7, R3, R2, R4, R5 — reported in that order (SERVICE.md §5).
CREATE OR REPLACE FUNCTION vmail.mail_account_before() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain;
	owner vmail.shell_account;
	n int;
	lim int;
	allocated bigint;
	tmpl text;
	why text;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.address <> OLD.address OR NEW.kind <> OLD.kind
		   OR NEW.shell_account_id IS DISTINCT FROM OLD.shell_account_id OR NEW.customer_id <> OLD.customer_id THEN
			PERFORM vmail.fail('VM400', format('mail account %s: address, kind and owner cannot change', OLD.address));
		END IF;
		-- The home is fixed at creation; only a shell account's move carries it along
		-- (shell_account_home_moved sets vmail.home_move around its update, for this
		-- transaction only; no other trigger, however nested, may change it).
		IF NEW.home <> OLD.home AND current_setting('vmail.home_move', true) IS DISTINCT FROM '1' THEN
			PERFORM vmail.fail('VM400', format('mail account %s: its home is fixed when it is created', OLD.address));
		END IF;
		IF NEW.kind = 'free' AND NEW.quota > OLD.quota THEN
			SELECT * INTO owner FROM vmail.shell_account WHERE id = NEW.shell_account_id FOR NO KEY UPDATE;
			SELECT coalesce(sum(quota), 0) INTO allocated FROM vmail.mail_account
			 WHERE shell_account_id = owner.id AND kind = 'free' AND id <> NEW.id;
			IF allocated + NEW.quota > owner.disk_limit THEN
				PERFORM vmail.fail('VMR05', format('R5: shell account %s: free mail account quotas would total %s, over its disk limit of %s',
					owner.login, vmail.size_text(allocated + NEW.quota), vmail.size_text(owner.disk_limit)));
			END IF;
		END IF;
		RETURN NEW;
	END IF;

	SELECT s.local_part, s.domain INTO NEW.local_part, d.name FROM vmail.split_address(NEW.address) s;
	d := vmail.domain_row(d.name);
	NEW.domain_id := d.id;
	NEW.address := NEW.local_part || '@' || d.name;
	IF NEW.kind = 'free' THEN
		SELECT * INTO owner FROM vmail.shell_account WHERE id = NEW.shell_account_id FOR NO KEY UPDATE;
		NEW.customer_id := owner.customer_id;
	END IF;

	-- R8: free accounts never live in the primary domain; paid ones may (administrator only).
	PERFORM vmail.r8_check(d, NEW.customer_id, NEW.kind = 'paid');
	-- R7
	PERFORM vmail.r7_check(d.id, NEW.local_part);
	IF NEW.kind = 'free' THEN
		IF owner.state = 'suspended' THEN
			PERFORM vmail.fail('VMR09', format('R9: shell account %s is suspended', owner.login));
		END IF;
		-- R3
		IF owner.mail_domain_id IS NULL THEN
			PERFORM vmail.fail('VMR03', format('R3: shell account %s has no mail domain yet; the administrator sets it before the first free mail account', owner.login));
		ELSIF owner.mail_domain_id <> d.id THEN
			PERFORM vmail.fail('VMR03', format('R3: free mail accounts of shell account %s must be in its mail domain %s, not %s',
				owner.login, (SELECT name FROM vmail.domain WHERE id = owner.mail_domain_id), d.name));
		END IF;
		-- R2
		SELECT count(*) INTO n FROM vmail.mail_account WHERE shell_account_id = owner.id AND kind = 'free';
		lim := (SELECT free_account_limit FROM vmail.settings);
		IF n >= lim THEN
			PERFORM vmail.fail('VMR02', format('R2: shell account %s already has %s of %s free mail accounts', owner.login, n, lim));
		END IF;
		-- R4: the domain row lock serialises every shell account's writers in this domain.
		PERFORM 1 FROM vmail.domain WHERE id = d.id FOR NO KEY UPDATE;
		SELECT count(*) INTO n FROM vmail.mail_account WHERE domain_id = d.id AND kind = 'free';
		lim := (SELECT free_per_domain_limit FROM vmail.settings);
		IF n >= lim THEN
			PERFORM vmail.fail('VMR04', format('R4: domain %s already has %s of %s free mail accounts', d.name, n, lim));
		END IF;
		-- R5
		SELECT coalesce(sum(quota), 0) INTO allocated FROM vmail.mail_account
		 WHERE shell_account_id = owner.id AND kind = 'free';
		IF allocated + NEW.quota > owner.disk_limit THEN
			PERFORM vmail.fail('VMR05', format('R5: shell account %s: free mail account quotas would total %s, over its disk limit of %s',
				owner.login, vmail.size_text(allocated + NEW.quota), vmail.size_text(owner.disk_limit)));
		END IF;
	END IF;
	-- Fixed now, with the id (set from its sequence before this trigger), never recomputed.
	-- A home that meets another one (vmail.home_conflict) takes the next id instead: ids
	-- need not be dense, and a few tries get past any run of legacy homes but a contrived one.
	tmpl := CASE NEW.kind WHEN 'free' THEN (SELECT free_home_template FROM vmail.settings)
		ELSE (SELECT paid_home_template FROM vmail.settings) END;
	FOR try IN 1..10 LOOP
		NEW.home := vmail.home_expand(tmpl, owner.home, d.name, NEW.local_part, NEW.id);
		why := vmail.home_conflict(NEW.home);
		IF why IS NULL THEN
			RETURN NEW;
		END IF;
		NEW.id := nextval(pg_get_serial_sequence('vmail.mail_account', 'id'));
	END LOOP;
	PERFORM vmail.fail('VM409', format('mail account %s: its home %s (and those with the next ids) would be %s; the administrator moves or purges that directory, or changes the home template',
		NEW.address, NEW.home, why));
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER mail_account_before BEFORE INSERT OR UPDATE ON vmail.mail_account
	FOR EACH ROW EXECUTE FUNCTION vmail.mail_account_before();

CREATE OR REPLACE FUNCTION vmail.mail_account_after() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vmail.claim_address(NEW.domain_id, NEW.local_part, 'account', NULL, NEW.id, NULL);
	-- Counters from the start: a new home is empty (home_conflict), so 0 is exact.  Without
	-- a row Dovecot 2.3 recounts on its first lookup and SETs the result, and a delivery
	-- counted meanwhile by another process is overwritten (a message lost to the counter).
	INSERT INTO vmail.mailbox_usage (mail_account_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER mail_account_after AFTER INSERT ON vmail.mail_account
	FOR EACH ROW EXECUTE FUNCTION vmail.mail_account_after();

CREATE OR REPLACE FUNCTION vmail.mail_account_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	a text;
BEGIN
	SELECT string_agg(al.address, ', ' ORDER BY al.address) INTO a
	  FROM vmail.alias_target t JOIN vmail.alias al ON al.id = t.alias_id
	 WHERE t.mail_account_id = OLD.id;
	IF a IS NOT NULL THEN
		PERFORM vmail.fail('VM409', format('mail account %s is the destination of alias %s; change or delete the alias first', OLD.address, a));
	END IF;
	-- Its files wait for `vmailctl mailbox purge`; its usage row goes now (ON DELETE CASCADE),
	-- so R6 stops counting them.  uid/gid: whose files they are (mailbox_facts).
	INSERT INTO vmail.retired_mailbox (mail_account_id, address, home, uid, gid)
	SELECT OLD.id, OLD.address, OLD.home, coalesce(s.uid, st.vmail_uid), coalesce(s.gid, st.vmail_gid)
	  FROM vmail.settings st LEFT JOIN vmail.shell_account s ON s.id = OLD.shell_account_id;
	RETURN OLD;
END $$;
CREATE OR REPLACE TRIGGER mail_account_delete BEFORE DELETE ON vmail.mail_account
	FOR EACH ROW EXECUTE FUNCTION vmail.mail_account_delete();

-- A shell account's home moves with its contents (usermod -m): the stored homes of its free
-- mail accounts inside it move along, and so do the retired homes of its deleted ones (its
-- uid, inside the old home), where `vmailctl mailbox purge` must now look for them; homes
-- elsewhere (another template) stay.
CREATE OR REPLACE FUNCTION vmail.shell_account_home_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	old_home text := rtrim(OLD.home, '/');
	new_home text := rtrim(NEW.home, '/');
BEGIN
	PERFORM set_config('vmail.home_move', '1', true);
	UPDATE vmail.mail_account
	   SET home = new_home || substr(home, length(old_home) + 1)
	 WHERE shell_account_id = NEW.id AND kind = 'free' AND left(home, length(old_home) + 1) = old_home || '/';
	PERFORM set_config('vmail.home_move', '', true);
	UPDATE vmail.retired_mailbox
	   SET home = new_home || substr(home, length(old_home) + 1)
	 WHERE uid = OLD.uid AND left(home, length(old_home) + 1) = old_home || '/';
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER shell_account_home_moved AFTER UPDATE OF home ON vmail.shell_account
	FOR EACH ROW WHEN (NEW.home <> OLD.home) EXECUTE FUNCTION vmail.shell_account_home_moved();

-- Paid mailboxes run under settings.vmail_uid: a shell account with that uid would own their
-- files and quota counters (the dict lets a uid write the counters of the logins it runs as).
-- Refused both ways: here for a shell account's uid, in settings_vmail_uid for the setting.
-- The settings row is locked FOR SHARE, so that a concurrent change of vmail_uid waits for
-- this transaction and then sees its row, or this one waits for that change and reads it.
CREATE OR REPLACE FUNCTION vmail.vmail_uid_check(p_login text, p_uid integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF p_uid = (SELECT vmail_uid FROM vmail.settings FOR SHARE) THEN
		PERFORM vmail.fail('VM409', format('uid %s is vmail_uid, the uid of paid mailboxes: shell account %s would own their files and quota counters',
			p_uid, p_login));
	END IF;
END $$;

CREATE OR REPLACE FUNCTION vmail.settings_vmail_uid() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	holder text;
BEGIN
	SELECT login INTO holder FROM vmail.shell_account WHERE uid = NEW.vmail_uid;
	IF holder IS NOT NULL THEN
		PERFORM vmail.fail('VM409', format('vmail_uid %s: uid %s belongs to shell account %s, which would own the paid mailboxes'' files and quota counters',
			NEW.vmail_uid, NEW.vmail_uid, holder));
	END IF;
	RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER settings_vmail_uid BEFORE INSERT OR UPDATE OF vmail_uid ON vmail.settings
	FOR EACH ROW EXECUTE FUNCTION vmail.settings_vmail_uid();

-- The triggers guard changes only; a clash already in the database is reported when this
-- file is applied (vmailctl db migrate prints warnings), for the administrator to resolve.
DO $$
DECLARE
	clash text;
BEGIN
	SELECT string_agg(s.login || ' (uid ' || s.uid || ')', ', ' ORDER BY s.login) INTO clash
	  FROM vmail.shell_account s JOIN vmail.settings v ON v.vmail_uid = s.uid;
	IF clash IS NOT NULL THEN
		RAISE WARNING 'shell account % has the uid of paid mailboxes (vmail_uid): change its uid or vmail_uid', clash;
	END IF;
END $$;

-- Shell accounts: not vmail_uid, R7 for the primary address, R3 and R5 when the account changes.
CREATE OR REPLACE FUNCTION vmail.shell_account_before() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	n int;
	allocated bigint;
	md vmail.domain;
BEGIN
	IF TG_OP = 'INSERT' OR NEW.uid <> OLD.uid THEN
		PERFORM vmail.vmail_uid_check(NEW.login, NEW.uid);
	END IF;
	IF TG_OP = 'INSERT' THEN
		PERFORM vmail.r7_check(vmail.primary_domain_id(), NEW.login);
		IF NEW.mail_domain_id IS NOT NULL THEN
			SELECT * INTO md FROM vmail.domain WHERE id = NEW.mail_domain_id;
			PERFORM vmail.r8_check(md, NEW.customer_id, false);
		END IF;
		RETURN NEW;
	END IF;
	IF NEW.login <> OLD.login OR NEW.customer_id <> OLD.customer_id THEN
		PERFORM vmail.fail('VM400', format('shell account %s: login and customer cannot change', OLD.login));
	END IF;
	IF NEW.mail_domain_id IS DISTINCT FROM OLD.mail_domain_id THEN
		SELECT count(*) INTO n FROM vmail.mail_account WHERE shell_account_id = OLD.id AND kind = 'free';
		IF n > 0 THEN
			PERFORM vmail.fail('VMR03', format('R3: shell account %s has %s free mail accounts in %s; its mail domain can change only when it has none',
				OLD.login, n, (SELECT name FROM vmail.domain WHERE id = OLD.mail_domain_id)));
		END IF;
		IF NEW.mail_domain_id IS NOT NULL THEN
			SELECT * INTO md FROM vmail.domain WHERE id = NEW.mail_domain_id;
			IF md.customer_id IS DISTINCT FROM NEW.customer_id THEN
				PERFORM vmail.r8_check(md, NEW.customer_id, false);
			END IF;
		END IF;
	END IF;
	IF NEW.disk_limit < OLD.disk_limit THEN
		SELECT coalesce(sum(quota), 0) INTO allocated FROM vmail.mail_account
		 WHERE shell_account_id = OLD.id AND kind = 'free';
		IF allocated > NEW.disk_limit THEN
			PERFORM vmail.fail('VMR05', format('R5: shell account %s: free mail account quotas total %s, over the new disk limit of %s',
				OLD.login, vmail.size_text(allocated), vmail.size_text(NEW.disk_limit)));
		END IF;
	END IF;
	RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER shell_account_before BEFORE INSERT OR UPDATE ON vmail.shell_account
	FOR EACH ROW EXECUTE FUNCTION vmail.shell_account_before();

CREATE OR REPLACE FUNCTION vmail.shell_account_after() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vmail.claim_address(vmail.primary_domain_id(), NEW.login, 'primary', NULL, NULL, NEW.id);
	-- As for mail accounts (mail_account_after).  A home that already holds mail needs
	-- `vmailctl usage recount LOGIN` once (docs/operations.md).
	INSERT INTO vmail.mailbox_usage (shell_account_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER shell_account_after AFTER INSERT ON vmail.shell_account
	FOR EACH ROW EXECUTE FUNCTION vmail.shell_account_after();

CREATE OR REPLACE FUNCTION vmail.shell_account_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	n int;
	a text;
BEGIN
	SELECT count(*) INTO n FROM vmail.mail_account WHERE shell_account_id = OLD.id;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('shell account %s still has %s free mail accounts; delete them first', OLD.login, n));
	END IF;
	SELECT string_agg(al.address, ', ' ORDER BY al.address) INTO a
	  FROM vmail.alias_target t JOIN vmail.alias al ON al.id = t.alias_id
	 WHERE t.shell_account_id = OLD.id AND al.owner_shell_id IS DISTINCT FROM OLD.id;
	IF a IS NOT NULL THEN
		PERFORM vmail.fail('VM409', format('shell account %s is the destination of alias %s; change or delete the alias first', OLD.login, a));
	END IF;
	RETURN OLD;
END $$;
CREATE OR REPLACE TRIGGER shell_account_delete BEFORE DELETE ON vmail.shell_account
	FOR EACH ROW EXECUTE FUNCTION vmail.shell_account_delete();

-- Domains: names are final; the kind follows from the name.
CREATE OR REPLACE FUNCTION vmail.domain_before() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.kind <> OLD.kind OR (NEW.name <> OLD.name AND OLD.kind <> 'primary')
		   OR NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
			PERFORM vmail.fail('VM400', format('domain %s: name, kind and customer cannot change', OLD.name));
		END IF;
		IF NEW.state = 'active' AND OLD.state <> 'active' THEN
			NEW.activated_at := now();
		END IF;
		RETURN NEW;
	END IF;
	NEW.name := lower(NEW.name);
	IF NEW.kind IS NULL THEN
		NEW.kind := CASE WHEN vmail.domain_is_local(NEW.name) THEN 'local' ELSE 'external' END;
	END IF;
	IF NEW.state IS NULL THEN
		NEW.state := CASE NEW.kind WHEN 'local' THEN 'pending_registration' WHEN 'external' THEN 'pending_proof' ELSE 'active' END;
	END IF;
	IF NEW.kind = 'external' AND NEW.verify_token IS NULL THEN
		NEW.verify_token := 'vmail-verify=' || replace(gen_random_uuid()::text, '-', '');
	END IF;
	IF EXISTS (SELECT 1 FROM vmail.domain WHERE name = NEW.name) THEN
		PERFORM vmail.fail('VMR07', format('R7: domain %s already exists', NEW.name));
	END IF;
	RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER domain_before BEFORE INSERT OR UPDATE ON vmail.domain
	FOR EACH ROW EXECUTE FUNCTION vmail.domain_before();
