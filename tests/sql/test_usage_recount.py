"""The quota recount list (schema 014, R_usage_recount.sql) against a real PostgreSQL: vmaild's
role adds mailboxes (usage_recount_add, one statement for many, repeats counted, odd names
skipped), vmailctl lists them and removes a row only when no failure came after the recount
started (usage_recount_done), or records the error (usage_recount_failed).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# A role holding vmail_lookup, as vmaild's login role does: test_lookups.py's golden caller.
from test_lookups import CALLER_ROLE, CREATE_CALLER  # noqa: E402


def setUpModule():
    pgsql.server_up()


class UsageRecountTest(unittest.TestCase):
    def setUp(self):
        self.db = pgsql.fresh_database("recount_" + self._testMethodName[5:])

    def sql(self, q):
        return pgsql.query(self.db, q).strip()

    def as_lookup(self, q):
        """q as vmaild's role; (ok, output or error)."""
        r = pgsql._psql(self.db, "SET ROLE vmail_lookup; " + q)
        return r.returncode == 0, (r.stdout if r.returncode == 0 else r.stderr).strip()

    def rows(self):
        return self.sql("SELECT login || ' ' || reason || ' ' || count || ' ' || attempts "
                        "FROM vmail.usage_recount_list()").splitlines()

    def test_add_merges_and_counts(self):
        ok, out = self.as_lookup(
            "SELECT vmail.usage_recount_add(ARRAY['jan','ewa@acme.pl','jan'], "
            "ARRAY['commit-unavailable','lookup-unavailable','lookup-unavailable'], ARRAY[1,1,1])")
        self.assertTrue(ok, out)
        self.assertEqual(out, "2")
        self.assertEqual(sorted(self.rows()), ["ewa@acme.pl lookup-unavailable 1 0",
                                               "jan lookup-unavailable 2 0"])
        first = self.sql("SELECT first_failed_at FROM vmail.usage_recount WHERE login = 'jan'")
        ok, out = self.as_lookup("SELECT vmail.usage_recount_add(ARRAY['jan'], "
                                 "ARRAY['commit-error'], ARRAY[3])")
        self.assertTrue(ok, out)
        # The first failure and its reason stay; the count grows.
        self.assertEqual(self.sql("SELECT reason || ' ' || count || ' ' || first_failed_at "
                                  "FROM vmail.usage_recount WHERE login = 'jan'"),
                         "lookup-unavailable 5 " + first)

    def test_add_skips_bad_entries(self):
        ok, out = self.as_lookup("SELECT vmail.usage_recount_add(ARRAY['', 'ok', '%s'], "
                                 "ARRAY['commit-unavailable', '', 'commit-unavailable'], "
                                 "ARRAY[1, 1, 1])" % ("x" * 1025))
        self.assertTrue(ok, out)
        self.assertEqual(out, "0")
        self.assertEqual(self.rows(), [])

    def test_lookup_role_may_not_remove(self):
        self.sql("SELECT vmail.usage_recount_add(ARRAY['jan'], ARRAY['commit-unavailable'], "
                 "ARRAY[1])")
        ok, out = self.as_lookup("SELECT vmail.usage_recount_done('jan', now())")
        self.assertFalse(ok, out)
        ok, out = self.as_lookup("DELETE FROM vmail.usage_recount")
        self.assertFalse(ok, out)
        self.assertEqual(len(self.rows()), 1)

    def test_lookup_role_writes_only_through_the_function(self):
        # vmaild logs in as a member of vmail_lookup (the golden-caller pattern of
        # test_lookups.py): the table is usage_recount_add's alone (SECURITY DEFINER).
        self.sql(CREATE_CALLER)
        as_caller = "SET ROLE %s; " % CALLER_ROLE
        self.sql("SELECT vmail.usage_recount_add(ARRAY['jan'], ARRAY['commit-unavailable'], "
                 "ARRAY[1])")
        for q in ("INSERT INTO vmail.usage_recount (login, reason) VALUES ('ewa', 'x')",
                  "UPDATE vmail.usage_recount SET count = 99",
                  "DELETE FROM vmail.usage_recount",
                  "SELECT count(*) FROM vmail.usage_recount"):
            r = pgsql._psql(self.db, as_caller + q)
            self.assertNotEqual(r.returncode, 0, "%s: %s" % (q, r.stdout))
            self.assertIn("permission denied", r.stderr, q)
        r = pgsql._psql(self.db, as_caller + "SELECT vmail.usage_recount_add(ARRAY['jan','ewa'], "
                        "ARRAY['commit-error','commit-error'], ARRAY[1,2])")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "2"), r.stderr)
        self.assertEqual(sorted(self.rows()), ["ewa commit-error 2 0",
                                               "jan commit-unavailable 2 0"])
        # The function is the definer's: its search_path is fixed, the caller's is not used.
        self.assertEqual(self.sql(
            "SELECT p.prosecdef, array_to_string(p.proconfig, ';') FROM pg_proc p "
            "WHERE p.oid = 'vmail.usage_recount_add(text[], text[], integer[])'::regprocedure"),
            "t|search_path=vmail, pg_temp")

    def test_done_keeps_a_later_failure(self):
        self.sql("SELECT vmail.usage_recount_add(ARRAY['jan','ewa'], "
                 "ARRAY['commit-unavailable','commit-unavailable'], ARRAY[1,1])")
        # A recount that started before jan failed again: jan stays, ewa goes.
        self.sql("UPDATE vmail.usage_recount SET last_failed_at = now() + interval '1 minute' "
                 "WHERE login = 'jan'")
        self.assertEqual(self.sql("SELECT vmail.usage_recount_done('jan', now())"), "f")
        self.assertEqual(self.sql("SELECT vmail.usage_recount_done('ewa', now())"), "t")
        self.assertEqual(self.rows(), ["jan commit-unavailable 1 0"])

    def test_failed_records_the_error(self):
        self.sql("SELECT vmail.usage_recount_add(ARRAY['jan'], ARRAY['commit-unavailable'], "
                 "ARRAY[1])")
        self.assertEqual(self.sql("SELECT vmail.usage_recount_failed('jan', repeat('e', 5000))"),
                         "t")
        self.assertEqual(self.sql("SELECT attempts || ' ' || length(last_error) "
                                  "FROM vmail.usage_recount"), "1 1000")
        self.assertEqual(self.sql("SELECT vmail.usage_recount_failed('nobody', 'x')"), "f")


if __name__ == "__main__":
    unittest.main()
