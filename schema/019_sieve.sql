-- 019: out-of-office replies and forwarding per mailbox (issue 24), turned into one Pigeonhole
-- Sieve script per mailbox that vmaild serves through Dovecot's dict (R_sieve.sql).  One row
-- per mailbox that has either; a mailbox is a shell account's or a mail account's, as in
-- vmail.mailbox_usage.  forward_limit caps the targets of one mailbox (SERVICE.md §5 as
-- extended by docs/rules.md, R11); customer.self_forward lets the administrator turn
-- self-service forwarding off for a customer.
ALTER TABLE vmail.settings
	ADD COLUMN forward_limit integer NOT NULL DEFAULT 3 CHECK (forward_limit BETWEEN 0 AND 100);
ALTER TABLE vmail.customer
	ADD COLUMN self_forward boolean NOT NULL DEFAULT true;

CREATE TABLE vmail.sieve_rule (
	id               bigserial PRIMARY KEY,
	shell_account_id bigint UNIQUE REFERENCES vmail.shell_account ON DELETE CASCADE,
	mail_account_id  bigint UNIQUE REFERENCES vmail.mail_account ON DELETE CASCADE,
	vacation_on      boolean NOT NULL DEFAULT false,
	-- one line of at most 200 characters, no control characters
	vacation_subject text CHECK (vacation_subject ~ '^[^[:cntrl:]]{1,200}$'),
	-- at most 8 KiB of UTF-8; lines end in LF (CRLF is stored as LF)
	vacation_body    text CHECK (octet_length(vacation_body) BETWEEN 1 AND 8192
		AND vacation_body !~ '[\x01-\x08\x0b-\x1f\x7f\r]'),
	vacation_start   date,
	vacation_end     date CHECK (vacation_end >= vacation_start),
	vacation_days    integer NOT NULL DEFAULT 7 CHECK (vacation_days BETWEEN 1 AND 30),
	vacation_from    text,
	forward_to       text[] NOT NULL DEFAULT '{}'
		CHECK (cardinality(forward_to) <= 100 AND array_position(forward_to, NULL) IS NULL),
	forward_keep     boolean NOT NULL DEFAULT true,
	CHECK (num_nonnulls(shell_account_id, mail_account_id) = 1),
	CHECK (NOT vacation_on OR (vacation_subject IS NOT NULL AND vacation_body IS NOT NULL))
);
