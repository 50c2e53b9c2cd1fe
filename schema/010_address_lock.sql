-- 010_address_lock: R7 under concurrency.  Two writers creating the same address could both
-- pass the check before either inserted, and the loser then hit the alias or mail account
-- table's own unique index (SQLSTATE 23505) instead of the R7 error.  Checking under the
-- domain's row lock serialises every writer of addresses in one domain, so the loser waits
-- and then sees the winner's committed row.  Callers already hold the owning shell account's
-- lock, so the lock order (shell account, then domain) is unchanged.
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
