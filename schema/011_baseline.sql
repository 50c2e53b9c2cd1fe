-- 011_baseline: the data model of SERVICE.md §2 — customers, shell accounts, domains, aliases,
-- mail accounts, usage, settings, grants and the audit log — as versions 1 to 11 left it.
-- A fresh database starts here; a database already at version 11 (made by the migrations
-- 001…011 this file replaces) skips it.  Tables, constraints, indexes and data only: the
-- CHECK functions (valid_*) come from R_valid.sql, applied before this file; functions,
-- triggers and views from the R_*.sql files, and privileges from grants.sql, applied after.
-- Rules that need more than one row (R1–R5, R7, R8) live in R_rules.sql; this file holds what
-- a single row must satisfy.  Column order follows the old migrations (settings.mail_hosts
-- came last), so both kinds of database dump alike.

-- Settings the rules and lookups need (SERVICE.md §5): exactly one row.
CREATE TABLE vmail.settings (
	id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
	alias_limit           integer NOT NULL DEFAULT 5 CHECK (alias_limit >= 0),
	free_account_limit    integer NOT NULL DEFAULT 5 CHECK (free_account_limit >= 0),
	free_per_domain_limit integer NOT NULL DEFAULT 5 CHECK (free_per_domain_limit >= 0),
	-- A set of characters, as Postfix's recipient_delimiter: the local part is cut at the
	-- first of any of them.  Empty disables sub-addressing.
	subaddress_delimiter  text NOT NULL DEFAULT '+'
	                      CHECK (length(subaddress_delimiter) <= 8 AND subaddress_delimiter !~ '[@[:space:][:alnum:]]'),
	local_suffixes        text[] NOT NULL DEFAULT
	                      '{lublin.pl,krasnik.pl,leczna.pl,lubartow.pl,poniatowa.pl,swidnik.pl}',
	primary_domain        text NOT NULL DEFAULT 'platon.man.lublin.pl'
	                      CHECK (vmail.valid_domain_name(primary_domain)),
	-- Where postmaster@ and abuse@ of every hosted domain go unless the customer says otherwise.
	postmaster_address    text,
	-- Mail layouts.  %h = the shell account's home, %d = domain, %n = local part.
	shell_mail_location   text NOT NULL DEFAULT 'maildir:~/Maildir',
	free_home_template    text NOT NULL DEFAULT '%h/mail/%d/%n',
	free_mail_location    text NOT NULL DEFAULT 'maildir:~/Maildir',
	paid_home_template    text NOT NULL DEFAULT '/var/vmail/%d/%n',
	paid_mail_location    text NOT NULL DEFAULT 'maildir:~/Maildir',
	vmail_uid             integer NOT NULL DEFAULT 5000 CHECK (vmail_uid > 0),
	vmail_gid             integer NOT NULL DEFAULT 5000 CHECK (vmail_gid > 0),
	-- The hosts customers' MX records must point at (`vmailctl domain check`, the panel's advice).
	mail_hosts            text[] NOT NULL DEFAULT '{}' CHECK (vmail.valid_host_list(mail_hosts))
);

CREATE TABLE vmail.customer (
	id           bigserial PRIMARY KEY,
	name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
	display_name text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now()
);

-- kind: primary = the ISP's own domain (no customer); local = <label>.<configured suffix>,
-- registered by the ISP; external = anything else, the customer proves ownership.
CREATE TABLE vmail.domain (
	id           bigserial PRIMARY KEY,
	name         text NOT NULL UNIQUE CHECK (vmail.valid_domain_name(name)),
	customer_id  bigint REFERENCES vmail.customer ON DELETE RESTRICT,
	kind         text NOT NULL CHECK (kind IN ('primary', 'local', 'external')),
	state        text NOT NULL CHECK (state IN ('pending_registration', 'pending_proof', 'active', 'suspended')),
	verify_token text,
	created_at   timestamptz NOT NULL DEFAULT now(),
	activated_at timestamptz,
	CHECK ((kind = 'primary') = (customer_id IS NULL))
);
CREATE UNIQUE INDEX domain_one_primary ON vmail.domain ((true)) WHERE kind = 'primary';
CREATE INDEX domain_customer ON vmail.domain (customer_id);

CREATE TABLE vmail.shell_account (
	id             bigserial PRIMARY KEY,
	customer_id    bigint NOT NULL REFERENCES vmail.customer ON DELETE RESTRICT,
	login          text NOT NULL UNIQUE CHECK (vmail.valid_login(login)),
	uid            integer NOT NULL UNIQUE CHECK (uid > 0),
	gid            integer NOT NULL CHECK (gid > 0),
	home           text NOT NULL CHECK (home ~ '^/[^[:cntrl:]]*$'),
	password       text CHECK (password ~ '^\{[A-Z0-9.-]+\}'),
	disk_limit     bigint NOT NULL CHECK (disk_limit > 0),
	-- NULL = the settings' alias_limit; a grant (R10) sets a larger value.
	alias_limit    integer CHECK (alias_limit >= 0),
	mail_domain_id bigint REFERENCES vmail.domain ON DELETE RESTRICT,
	state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended')),
	created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shell_account_customer ON vmail.shell_account (customer_id);

-- Free accounts belong to a shell account and live inside its disk limit; paid accounts
-- belong to a customer and have their own quota.
CREATE TABLE vmail.mail_account (
	id               bigserial PRIMARY KEY,
	address          text NOT NULL UNIQUE,
	domain_id        bigint NOT NULL REFERENCES vmail.domain ON DELETE RESTRICT,
	local_part       text NOT NULL CHECK (vmail.valid_local_part(local_part)),
	kind             text NOT NULL CHECK (kind IN ('free', 'paid')),
	shell_account_id bigint REFERENCES vmail.shell_account ON DELETE RESTRICT,
	customer_id      bigint NOT NULL REFERENCES vmail.customer ON DELETE RESTRICT,
	password         text CHECK (password ~ '^\{[A-Z0-9.-]+\}'),
	quota            bigint NOT NULL CHECK (quota > 0),
	state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended')),
	created_at       timestamptz NOT NULL DEFAULT now(),
	CHECK ((kind = 'free') = (shell_account_id IS NOT NULL)),
	UNIQUE (domain_id, local_part)
);
CREATE INDEX mail_account_shell ON vmail.mail_account (shell_account_id);

-- local_part '' is the domain's catch-all (@domain).
CREATE TABLE vmail.alias (
	id             bigserial PRIMARY KEY,
	address        text NOT NULL UNIQUE,
	domain_id      bigint NOT NULL REFERENCES vmail.domain ON DELETE RESTRICT,
	local_part     text NOT NULL CHECK (local_part = '' OR vmail.valid_local_part(local_part)),
	customer_id    bigint REFERENCES vmail.customer ON DELETE RESTRICT,
	-- Self-service aliases have an owner and count toward its R1 limit; administrator
	-- aliases never count.  postmaster@ and abuse@ never count (RFC 2142 addresses).
	owner_shell_id bigint REFERENCES vmail.shell_account ON DELETE CASCADE,
	self_service   boolean NOT NULL,
	counts         boolean GENERATED ALWAYS AS
	               (self_service AND local_part NOT IN ('postmaster', 'abuse')) STORED,
	created_at     timestamptz NOT NULL DEFAULT now(),
	CHECK (NOT self_service OR owner_shell_id IS NOT NULL),
	UNIQUE (domain_id, local_part)
);
CREATE INDEX alias_owner ON vmail.alias (owner_shell_id) WHERE counts;

-- Each destination is exactly one of: a shell account's mailbox, a mail account, or an
-- address outside our domains (forwarding, administrator aliases only).  The two mailbox
-- foreign keys are NO ACTION, checked at the end of the statement, after the cascades of a
-- deleted owner have removed its own aliases.
CREATE TABLE vmail.alias_target (
	alias_id         bigint NOT NULL REFERENCES vmail.alias ON DELETE CASCADE,
	position         integer NOT NULL,
	shell_account_id bigint REFERENCES vmail.shell_account,
	mail_account_id  bigint REFERENCES vmail.mail_account,
	external         text CHECK (external ~ '^[^@[:space:][:cntrl:],<>]+@[a-z0-9.-]+$'),
	PRIMARY KEY (alias_id, position),
	CHECK (num_nonnulls(shell_account_id, mail_account_id, external) = 1)
);
CREATE INDEX alias_target_shell ON vmail.alias_target (shell_account_id);
CREATE INDEX alias_target_account ON vmail.alias_target (mail_account_id);

-- R7: every address of a hosted domain belongs to exactly one thing.  Maintained by
-- triggers; the primary key is the backstop against racing writers.
CREATE TABLE vmail.address (
	domain_id        bigint NOT NULL REFERENCES vmail.domain ON DELETE CASCADE,
	local_part       text NOT NULL,
	kind             text NOT NULL CHECK (kind IN ('alias', 'account', 'primary')),
	alias_id         bigint UNIQUE REFERENCES vmail.alias ON DELETE CASCADE,
	mail_account_id  bigint UNIQUE REFERENCES vmail.mail_account ON DELETE CASCADE,
	shell_account_id bigint UNIQUE REFERENCES vmail.shell_account ON DELETE CASCADE,
	PRIMARY KEY (domain_id, local_part),
	CHECK (num_nonnulls(alias_id, mail_account_id, shell_account_id) = 1)
);

-- Mailbox usage as Dovecot reports it.  No row = unknown (Dovecot recounts).
CREATE TABLE vmail.mailbox_usage (
	shell_account_id bigint UNIQUE REFERENCES vmail.shell_account ON DELETE CASCADE,
	mail_account_id  bigint UNIQUE REFERENCES vmail.mail_account ON DELETE CASCADE,
	bytes            bigint NOT NULL DEFAULT 0,
	messages         bigint NOT NULL DEFAULT 0,
	updated_at       timestamptz NOT NULL DEFAULT now(),
	CHECK (num_nonnulls(shell_account_id, mail_account_id) = 1)
);

-- The shell account's disk use outside its mail folders, reported by the system.
CREATE TABLE vmail.files_usage (
	shell_account_id bigint PRIMARY KEY REFERENCES vmail.shell_account ON DELETE CASCADE,
	bytes            bigint NOT NULL CHECK (bytes >= 0),
	updated_at       timestamptz NOT NULL DEFAULT now()
);

-- R10: what the administrator granted beyond the defaults.
CREATE TABLE vmail.grant_log (
	id               bigserial PRIMARY KEY,
	shell_account_id bigint REFERENCES vmail.shell_account ON DELETE SET NULL,
	login            text NOT NULL,
	what             text NOT NULL CHECK (what IN ('alias_limit', 'disk_limit', 'admin_alias')),
	old_value        text,
	new_value        text,
	note             text NOT NULL DEFAULT '',
	granted_by       text NOT NULL,
	granted_at       timestamptz NOT NULL DEFAULT now()
);

-- Every change: who, from where, when, what, before and after.
CREATE TABLE vmail.audit_log (
	id          bigserial PRIMARY KEY,
	at          timestamptz NOT NULL DEFAULT clock_timestamp(),
	actor       text NOT NULL,
	client      text,
	action      text NOT NULL,
	object_kind text NOT NULL,
	object      text NOT NULL,
	before      jsonb,
	after       jsonb
);
CREATE INDEX audit_log_object ON vmail.audit_log (object_kind, object);
CREATE INDEX audit_log_at ON vmail.audit_log (at);

-- The settings row and the primary domain it names (R_settings.sql keeps the two in step).
INSERT INTO vmail.settings DEFAULT VALUES;
INSERT INTO vmail.domain (name, customer_id, kind, state, activated_at)
	SELECT primary_domain, NULL, 'primary', 'active', now() FROM vmail.settings;
