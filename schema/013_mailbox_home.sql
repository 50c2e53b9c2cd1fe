-- 013: a mail account's home is fixed when the account is created and kept in its row
-- (issue 16).  It was computed at every lookup from the settings' templates, so deleting
-- x@d and creating x@d again handed the old Maildir to the new holder.  New homes include the
-- account's id (%i), which is never reused; existing accounts keep exactly the path they use
-- today, so nothing moves.  A deleted account's home waits in vmail.retired_mailbox until
-- `vmailctl mailbox purge` (run as root) removes the directory and then the row.
ALTER TABLE vmail.mail_account ADD COLUMN home text;
-- The triggers (audit, rules, cache notifications) stay out of the backfill and the template
-- change below: nothing an administrator did, nothing a lookup answers differently; the
-- migration itself is recorded in vmail_meta.migrations.  (On a fresh install the R_ files
-- have not created them yet.)
ALTER TABLE vmail.mail_account DISABLE TRIGGER USER;
ALTER TABLE vmail.settings DISABLE TRIGGER USER;
-- The expression the lookups used up to version 12, verbatim.
UPDATE vmail.mail_account a SET home = CASE a.kind WHEN 'free'
		THEN replace(replace(replace(st.free_home_template, '%h',
			(SELECT s.home FROM vmail.shell_account s WHERE s.id = a.shell_account_id)),
			'%d', (SELECT d.name FROM vmail.domain d WHERE d.id = a.domain_id)), '%n', a.local_part)
		ELSE replace(replace(st.paid_home_template,
			'%d', (SELECT d.name FROM vmail.domain d WHERE d.id = a.domain_id)), '%n', a.local_part) END
	FROM vmail.settings st;
ALTER TABLE vmail.mail_account ALTER COLUMN home SET NOT NULL;
-- New and changed rows only: a home an old template made is kept as it is, whatever it is.
ALTER TABLE vmail.mail_account ADD CONSTRAINT mail_account_home_absolute
	CHECK (home ~ '^/[^[:cntrl:]]*$') NOT VALID;

-- A template without %i (as a component of its own or after a "." ending one) gets ".%i"
-- appended, so that no new account can land in a retired account's directory; setting_set
-- refuses such templates from now on (vmail.check_home_template).  A legacy home may still
-- equal a new one (john.2024@d's and john@d's with id 2024): the trigger skips such ids.
UPDATE vmail.settings SET
	free_home_template = CASE WHEN free_home_template !~ '(^|/|\.)%i(/|$)'
		THEN rtrim(free_home_template, '/') || '.%i' ELSE free_home_template END,
	paid_home_template = CASE WHEN paid_home_template !~ '(^|/|\.)%i(/|$)'
		THEN rtrim(paid_home_template, '/') || '.%i' ELSE paid_home_template END;
ALTER TABLE vmail.mail_account ENABLE TRIGGER USER;
ALTER TABLE vmail.settings ENABLE TRIGGER USER;
ALTER TABLE vmail.settings
	ALTER COLUMN free_home_template SET DEFAULT '%h/mail/%d/%n.%i',
	ALTER COLUMN paid_home_template SET DEFAULT '/var/vmail/%d/%n.%i',
	ADD CONSTRAINT settings_home_template_id
		CHECK (free_home_template ~ '(^|/|\.)%i(/|$)' AND paid_home_template ~ '(^|/|\.)%i(/|$)');

-- Homes of deleted mail accounts, waiting for `vmailctl mailbox purge`.  No foreign key: the
-- account is gone.  uid is the owner its top directory must have (the shell account's uid for
-- a free account, settings.vmail_uid for a paid one), checked before anything is removed.
CREATE TABLE vmail.retired_mailbox (
	id              bigserial PRIMARY KEY,
	mail_account_id bigint NOT NULL,
	address         text NOT NULL,
	home            text NOT NULL,
	uid             integer NOT NULL,
	gid             integer NOT NULL,
	deleted_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retired_mailbox_deleted ON vmail.retired_mailbox (deleted_at);
