-- 016: the login relation (issue 18).  What Dovecot's passdb and userdb need for a login,
-- precomputed (vmail.mailbox_facts' answer), so that a lookup is one index probe.  Kept by
-- R_route_login.sql: triggers on shell_account and mail_account, a rebuild when the settings
-- change.  Keys: a shell account's login, the same at the primary domain, a mail account's
-- address (a shell account's name at the primary domain wins, as vmail.mailbox_of had it).
CREATE TABLE vmail.login (
	key            text PRIMARY KEY,
	username       text NOT NULL,
	password       text,
	suspended      boolean NOT NULL,
	home           text NOT NULL,
	mail           text NOT NULL,
	uid            integer NOT NULL,
	gid            integer NOT NULL,
	own_quota      bigint,
	account_limit  bigint,
	shell_id       bigint,
	account_id     bigint,
	payer_shell_id bigint,
	-- mail in Dovecot 2.4's settings (vmail.mail_location_v24)
	mail_driver         text,
	mail_path           text,
	mail_inbox_path     text,
	mail_index_path     text,
	mail_control_path   text,
	mailbox_list_layout text
);
CREATE INDEX login_shell ON vmail.login (shell_id);
CREATE INDEX login_account ON vmail.login (account_id);

-- The shell account whose disk limit a mailbox's usage counts against (R6): a shell account's
-- own mailbox and its free mail accounts; none for paid ones.  Fixed at the row's creation (a
-- mail account's kind and owner never change), so the account total is a sum over the few
-- rows of one index key.
ALTER TABLE vmail.mailbox_usage ADD COLUMN payer_shell_id bigint;
UPDATE vmail.mailbox_usage u SET payer_shell_id = coalesce(u.shell_account_id,
	(SELECT a.shell_account_id FROM vmail.mail_account a WHERE a.id = u.mail_account_id AND a.kind = 'free'));
CREATE INDEX mailbox_usage_payer ON vmail.mailbox_usage (payer_shell_id);
