"""Rules R1-R10 against a real PostgreSQL: for each rule one success and one refusal
(with its SQLSTATE and message), plus races for the last free slot.

Plain SQL on purpose: the rules must hold for every writer, not only for vmailctl.
Uses the server named by VMAIL_TEST_PGDIR (tests/world/pg.sh) or starts its own.
"""
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402

MiB = 1024 * 1024


def setUpModule():
    pgsql.server_up()


class RulesTest(unittest.TestCase):
    def setUp(self):
        self.db = pgsql.fresh_database("rules_" + self._testMethodName[5:])
        self.sql("SELECT vmail.customer_add('acme', 'Acme')")
        self.sql("SELECT vmail.customer_add('other', 'Other')")
        self.sql(f"SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{pgsql.SELF_HASH}', 100*1024*1024)")
        self.sql("SELECT vmail.shell_add('acme', 'ewa', 2002, 2002, '/home/ewa', NULL, 100*1024*1024)")
        self.sql("SELECT vmail.shell_add('other', 'ola', 2003, 2003, '/home/ola', NULL, 100*1024*1024)")
        self.sql("SELECT vmail.domain_add('acme', 'acme.lublin.pl')")
        self.sql("SELECT vmail.domain_add('acme', 'acme.com.pl')")
        self.sql("SELECT vmail.domain_add('other', 'other.pl')")
        for d in ("acme.lublin.pl", "acme.com.pl", "other.pl"):
            self.sql(f"SELECT vmail.domain_set_state('{d}', 'active')")
        self.jan = pgsql.self_token(self.db, "jan")

    def sql(self, q):
        return pgsql.query(self.db, q)

    def refused(self, q, sqlstate, text):
        """q must fail with sqlstate and a message containing text, and change nothing."""
        before = self.snapshot()
        err = pgsql.error(self.db, q)
        self.assertIsNotNone(err, f"expected {sqlstate} from: {q}")
        self.assertIn(sqlstate, err)
        self.assertIn(text, err)
        self.assertEqual(before, self.snapshot(), "a refused change left traces")

    def snapshot(self):
        return self.sql("SELECT (SELECT count(*) FROM vmail.alias), (SELECT count(*) FROM vmail.alias_target),"
                        " (SELECT count(*) FROM vmail.mail_account), (SELECT count(*) FROM vmail.address),"
                        " (SELECT count(*) FROM vmail.audit_log), (SELECT count(*) FROM vmail.grant_log),"
                        " (SELECT string_agg(login || disk_limit || coalesce(mail_domain_id::text, '-'), ',')"
                        "    FROM vmail.shell_account),"
                        " (SELECT string_agg(name || ':' || coalesce(alias_of::text, '-'), ',' ORDER BY name)"
                        "    FROM vmail.domain)")

    def mail_domains(self):
        self.sql("SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl')")
        self.sql("SELECT vmail.shell_set('ewa', 'mail_domain', 'acme.lublin.pl')")

    # R1
    def test_r1_self_service_alias_limit(self):
        for i in range(5):
            dom = "acme.lublin.pl" if i % 2 else "acme.com.pl"
            self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'a{i}@{dom}', 'jan')")
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'a5@acme.lublin.pl', 'jan')",
                     "VMR01", "R1: shell account jan already has 5 of 5 self-service aliases")
        # postmaster@ and abuse@ never count; administrator aliases never count.
        self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'postmaster@acme.lublin.pl', 'jan')")
        self.sql("SELECT vmail.alias_add('extra@acme.lublin.pl', ARRAY['jan'], false, 'jan')")
        self.assertEqual(self.sql("SELECT what, new_value FROM vmail.grant_log"), "admin_alias|extra@acme.lublin.pl")
        # A grant raises the limit (R10).
        self.sql("SELECT vmail.grant('jan', 'alias_limit', '6', 'paid extra')")
        self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'a5@acme.lublin.pl', 'jan')")
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'a6@acme.lublin.pl', 'jan')",
                     "VMR01", "6 of 6")

    # R2
    def test_r2_free_accounts_per_shell(self):
        self.mail_domains()
        self.sql("SELECT vmail.setting_set('free_per_domain_limit', '10')")
        for i in range(5):
            self.sql(f"SELECT vmail.account_add('f{i}@acme.lublin.pl', 'free', 'jan', NULL, 1048576)")
        self.refused("SELECT vmail.account_add('f5@acme.lublin.pl', 'free', 'jan', NULL, 1048576)",
                     "VMR02", "R2: shell account jan already has 5 of 5 free mail accounts")
        # Paid accounts count toward no free limit.
        self.sql("SELECT vmail.account_add('paid@acme.lublin.pl', 'paid', 'acme', NULL, 1048576)")

    # R3
    def test_r3_one_mail_domain(self):
        self.refused("SELECT vmail.account_add('f@acme.lublin.pl', 'free', 'jan', NULL, 1048576)",
                     "VMR03", "has no mail domain yet")
        self.mail_domains()
        self.sql("SELECT vmail.account_add('f@acme.lublin.pl', 'free', 'jan', NULL, 1048576)")
        self.refused("SELECT vmail.account_add('g@acme.com.pl', 'free', 'jan', NULL, 1048576)",
                     "VMR03", "must be in its mail domain acme.lublin.pl, not acme.com.pl")
        self.refused("SELECT vmail.shell_set('jan', 'mail_domain', 'acme.com.pl')",
                     "VMR03", "its mail domain can change only when it has none")
        self.sql("SELECT vmail.shell_set('ewa', 'mail_domain', 'acme.com.pl')")

    # R4
    def test_r4_free_accounts_per_domain(self):
        self.mail_domains()
        for i in range(3):
            self.sql(f"SELECT vmail.account_add('j{i}@acme.lublin.pl', 'free', 'jan', NULL, 1048576)")
        for i in range(2):
            self.sql(f"SELECT vmail.account_add('e{i}@acme.lublin.pl', 'free', 'ewa', NULL, 1048576)")
        self.refused("SELECT vmail.account_add('e2@acme.lublin.pl', 'free', 'ewa', NULL, 1048576)",
                     "VMR04", "R4: domain acme.lublin.pl already has 5 of 5 free mail accounts")

    # R5
    def test_r5_allocation(self):
        self.mail_domains()
        self.sql(f"SELECT vmail.account_add('a@acme.lublin.pl', 'free', 'jan', NULL, {60*MiB})")
        self.refused(f"SELECT vmail.account_add('b@acme.lublin.pl', 'free', 'jan', NULL, {50*MiB})",
                     "VMR05", "quotas would total 110 MiB, over its disk limit of 100 MiB")
        self.sql(f"SELECT vmail.account_add('b@acme.lublin.pl', 'free', 'jan', NULL, {40*MiB})")
        self.refused(f"SELECT vmail.account_set('b@acme.lublin.pl', 'quota', '{41*MiB}')", "VMR05", "101 MiB")
        self.refused("SELECT vmail.shell_set('jan', 'disk_limit', '1048576')", "VMR05", "over the new disk limit")

    # R6 (usage at delivery): the policy verdict and Dovecot's second quota root.
    def test_r6_usage(self):
        self.mail_domains()
        self.sql(f"SELECT vmail.account_add('f@acme.lublin.pl', 'free', 'jan', NULL, {10*MiB})")
        self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'info@acme.lublin.pl', 'f@acme.lublin.pl')")
        self.sql("SELECT vmail.quota_set('jan', 1000, 1)")
        self.sql("SELECT vmail.quota_set('f@acme.lublin.pl', 2000, 2)")
        self.assertEqual(self.sql("SELECT vmail.policy_check('info@acme.lublin.pl', 100)"), "")
        self.sql(f"SELECT vmail.usage_set_files('jan', {100*MiB - 3000})")
        self.assertEqual(self.sql("SELECT vmail.quota_get('f@acme.lublin.pl', 'storage', 'account')"), str(100*MiB))
        self.assertEqual(self.sql("SELECT vmail.policy_check('info@acme.lublin.pl', 0)"),
                         f"full\tf@acme.lublin.pl\t{100*MiB}\t{100*MiB}")
        self.assertTrue(self.sql("SELECT vmail.policy_check('jan@platon.man.lublin.pl', 0)").startswith("full\t"))
        self.assertEqual(self.sql("SELECT vmail.policy_check('ewa@platon.man.lublin.pl', 0)"), "")

    # R7
    def test_r7_one_address_one_thing(self):
        self.mail_domains()
        self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'biuro@acme.lublin.pl', 'jan')")
        self.refused("SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'ewa', NULL, 1048576)",
                     "VMR07", "address biuro@acme.lublin.pl is already an alias")
        self.refused("SELECT vmail.account_add('jan@platon.man.lublin.pl', 'paid', 'acme', NULL, 1048576)",
                     "VMR07", "already the primary address of shell account jan")
        self.refused("SELECT vmail.domain_add('other', 'acme.com.pl')", "VMR07", "domain acme.com.pl already exists")
        self.sql("SELECT vmail.account_add('x@platon.man.lublin.pl', 'paid', 'acme', NULL, 1048576)")
        self.refused("SELECT vmail.shell_add('acme', 'x', 2010, 2010, '/home/x', NULL, 1048576)",
                     "VMR07", "x@platon.man.lublin.pl is already a mail account")
        # Plain SQL is refused too, not only the functions.
        self.refused("INSERT INTO vmail.mail_account (address, domain_id, local_part, kind, customer_id, quota)"
                     " VALUES ('biuro@acme.lublin.pl', 0, 'x', 'paid', 1, 1)", "VMR07", "already an alias")

    # R8
    def test_r8_domain_of_customer_and_active(self):
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'x@other.pl', 'jan')",
                     "VMR08", "domain other.pl belongs to customer other, not to customer acme")
        self.sql("SELECT vmail.domain_add('acme', 'nowa.lublin.pl')")
        self.sql("SELECT vmail.domain_add('acme', 'nowa.com')")
        self.assertEqual(self.sql("SELECT kind, state FROM vmail.domain WHERE name = 'nowa.lublin.pl'"),
                         "local|pending_registration")
        self.assertEqual(self.sql("SELECT kind, state, verify_token LIKE 'vmail-verify=%' FROM vmail.domain WHERE name = 'nowa.com'"),
                         "external|pending_proof|t")
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'x@nowa.lublin.pl', 'jan')",
                     "VMR08", "domain nowa.lublin.pl is awaiting registration")
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'x@nowa.com', 'jan')",
                     "VMR08", "domain nowa.com is awaiting ownership proof")
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'x@platon.man.lublin.pl', 'jan')",
                     "VMR08", "primary domain")
        self.sql("SELECT vmail.domain_set_state('nowa.com', 'active')")
        self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'x@nowa.com', 'jan')")
        self.refused("SELECT vmail.alias_add('y@acme.com.pl', ARRAY['ola'], false)",
                     "VMR08", "mailbox ola@platon.man.lublin.pl belongs to customer other")

    # Domain aliases (issue 20): R8 between the two domains, no chains, the target stays
    def test_domain_alias_rules(self):
        self.refused("SELECT vmail.domain_alias('other.pl', 'acme.lublin.pl')",
                     "VMR08", "domain other.pl belongs to customer other, domain acme.lublin.pl to customer acme")
        self.refused("SELECT vmail.domain_alias('acme.com.pl', 'acme.com.pl')", "VM409", "alias of itself")
        self.refused("SELECT vmail.domain_alias('platon.man.lublin.pl', 'acme.lublin.pl')", "VMR08", "primary domain")
        self.refused("SELECT vmail.domain_alias('acme.com.pl', 'platon.man.lublin.pl')", "VMR08", "primary domain")
        self.sql("SELECT vmail.domain_add('acme', 'nowa.lublin.pl')")
        self.refused("SELECT vmail.domain_alias('nowa.lublin.pl', 'acme.lublin.pl')",
                     "VMR08", "domain nowa.lublin.pl is awaiting registration")
        self.refused("SELECT vmail.domain_alias('acme.com.pl', 'nowa.lublin.pl')",
                     "VMR08", "domain nowa.lublin.pl is awaiting registration")
        audited = int(self.sql("SELECT count(*) FROM vmail.audit_log"))
        self.sql("SELECT vmail.domain_alias('acme.com.pl', 'acme.lublin.pl')")
        self.assertGreater(int(self.sql("SELECT count(*) FROM vmail.audit_log")), audited)
        self.sql("SELECT vmail.domain_set_state('nowa.lublin.pl', 'active')")
        self.refused("SELECT vmail.domain_alias('acme.lublin.pl', 'nowa.lublin.pl')",
                     "VM409", "domain acme.lublin.pl is the target of the alias domains acme.com.pl: no chains")
        self.refused("SELECT vmail.domain_alias('nowa.lublin.pl', 'acme.com.pl')",
                     "VM409", "domain acme.com.pl is itself an alias of acme.lublin.pl: no chains")
        self.refused("SELECT vmail.domain_del('acme.lublin.pl')", "VM409", "unalias them first")
        self.refused("SELECT vmail.domain_unalias('acme.lublin.pl')", "VM404", "not an alias domain")
        # a second alias domain of the same target is fine; a domain has one target (a column)
        self.sql("SELECT vmail.domain_alias('nowa.lublin.pl', 'acme.lublin.pl')")
        self.assertEqual(self.sql("SELECT string_agg(name, ',' ORDER BY name) FROM vmail.domain"
                                  " WHERE alias_of = (SELECT id FROM vmail.domain WHERE name = 'acme.lublin.pl')"),
                         "acme.com.pl,nowa.lublin.pl")
        self.sql("SELECT vmail.domain_unalias('nowa.lublin.pl')")
        self.sql("SELECT vmail.domain_del('nowa.lublin.pl')")

    def test_domain_alias_addresses_count_as_their_own(self):
        """The alias domain's explicit addresses are its own under R7 and R1; mirrors count for nothing."""
        self.mail_domains()
        self.sql("SELECT vmail.account_add('f@acme.lublin.pl', 'free', 'jan', NULL, 1048576)")
        self.sql("SELECT vmail.domain_alias('acme.com.pl', 'acme.lublin.pl')")
        self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'info@acme.lublin.pl', 'f@acme.lublin.pl')")
        counted = self.sql("SELECT count(*) FROM vmail.alias WHERE counts")
        self.assertEqual(self.sql("SELECT vmail.lookup_alias('info@acme.com.pl')"), "f@acme.lublin.pl")
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.alias WHERE counts"), counted)
        # R7 is checked against acme.com.pl's own rows: the same local part is free there
        self.sql(f"SELECT vmail.self_alias_add('{self.jan}', 'info@acme.com.pl', 'jan')")
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.alias WHERE counts"), str(int(counted) + 1))
        self.assertEqual(self.sql("SELECT vmail.lookup_alias('info@acme.com.pl')"), "jan@platon.man.lublin.pl")
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'info@acme.com.pl', 'jan')", "VMR07", "info@acme.com.pl")

    # R9
    def test_r9_suspension(self):
        self.mail_domains()
        self.sql("SELECT vmail.account_add('f@acme.lublin.pl', 'free', 'jan', '{SHA512-CRYPT}$6$s$h', 1048576)")
        self.sql("SELECT vmail.shell_set('jan', 'password', '{SHA512-CRYPT}$6$s$h')")
        self.jan = pgsql.self_token(self.db, "jan")
        self.assertNotEqual(self.sql("SELECT vmail.passdb_json('f@acme.lublin.pl')"), "")
        self.sql("SELECT vmail.shell_set('jan', 'state', 'suspended')")
        self.assertEqual(self.sql("SELECT vmail.passdb_json('jan')"), "")
        self.assertEqual(self.sql("SELECT vmail.passdb_json('f@acme.lublin.pl')"), "")
        self.assertEqual(self.sql("SELECT vmail.userdb_json('f@acme.lublin.pl')"), '{"tempfail" : "yes"}')
        self.assertEqual(self.sql("SELECT vmail.self_login('jan', '{SHA512-CRYPT}$6$s$h', NULL, 60)"), "")
        self.assertEqual(self.sql("SELECT vmail.policy_check('f@acme.lublin.pl', 0)"),
                         "suspended\tf@acme.lublin.pl")
        # Mail still resolves (deferred, not bounced).
        self.assertEqual(self.sql("SELECT vmail.lookup_mailbox('f@acme.lublin.pl')"), "f@acme.lublin.pl")
        # the suspension ended the session it had
        self.refused(f"SELECT vmail.self_alias_add('{self.jan}', 'z@acme.lublin.pl', 'jan')", "VM401", "log in again")
        self.sql("SELECT vmail.shell_set('jan', 'state', 'active')")
        self.assertNotEqual(self.sql("SELECT vmail.passdb_json('f@acme.lublin.pl')"), "")

    # R10
    def test_r10_grants_and_audit(self):
        self.sql("SELECT set_config('vmail.actor', 'admin:root', false)")
        self.db_actor = "admin:root"
        pgsql.query(self.db, "SELECT set_config('vmail.actor', 'admin:root', true), vmail.grant('jan', 'disk_limit', '209715200', 'bought 100M')")
        self.assertEqual(self.sql("SELECT login, what, old_value, new_value, note, granted_by FROM vmail.grant_log"),
                         "jan|disk_limit|104857600|209715200|bought 100M|admin:root")
        self.assertEqual(self.sql("SELECT actor, action, before->>'disk_limit', after->>'disk_limit' FROM vmail.audit_log"
                                  " WHERE object = 'jan' AND action = 'update'"),
                         "admin:root|update|104857600|209715200")
        self.refused("SELECT vmail.grant('jan', 'free_accounts', '9')", "VM400", 'unknown grant "free_accounts"')
        # Password hashes never enter the audit log.
        self.sql("SELECT vmail.shell_set('ewa', 'password', '{SHA512-CRYPT}$6$secret$hash')")
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.audit_log WHERE after::text LIKE '%secret%'"), "0")
        self.assertEqual(self.sql("SELECT before->>'password', after->>'password' FROM vmail.audit_log"
                                  " ORDER BY id DESC LIMIT 1"), "|(changed)")
        self.sql("SELECT vmail.shell_set('ewa', 'password', '{SHA512-CRYPT}$6$other$hash')")
        self.assertEqual(self.sql("SELECT before->>'password', after->>'password' FROM vmail.audit_log"
                                  " ORDER BY id DESC LIMIT 1"), "(set)|(changed)")
        # An update that changes nothing leaves no entry, hash or not.
        n = self.sql("SELECT count(*) FROM vmail.audit_log")
        self.sql("UPDATE vmail.shell_account SET disk_limit = disk_limit WHERE login = 'jan'")
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.audit_log"), n)


class RaceTest(unittest.TestCase):
    """Twenty writers race for the last slot: exactly one wins."""

    def setUp(self):
        self.db = pgsql.fresh_database("race_" + self._testMethodName[5:])
        q = lambda s: pgsql.query(self.db, s)  # noqa: E731
        q("SELECT vmail.customer_add('acme')")
        for i, login in enumerate(("jan", "ewa")):
            q(f"SELECT vmail.shell_add('acme', '{login}', {3000+i}, {3000+i}, '/home/{login}', NULL, 104857600)")
        q("SELECT vmail.domain_add('acme', 'acme.lublin.pl')")
        q("SELECT vmail.domain_set_state('acme.lublin.pl', 'active')")
        q("SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl')")
        q("SELECT vmail.shell_set('ewa', 'mail_domain', 'acme.lublin.pl')")
        self.jan = pgsql.self_token(self.db, "jan")

    def race(self, statements):
        """Run the statements in parallel sessions, all released at the same instant."""
        start = pgsql.query(self.db, "SELECT clock_timestamp() + interval '1 second'")
        barrier = f"SELECT pg_sleep_until('{start}'); "
        with concurrent.futures.ThreadPoolExecutor(len(statements)) as pool:
            return list(pool.map(lambda s: pgsql.error(self.db, barrier + s), statements))

    def test_last_alias_slot(self):
        for i in range(4):
            pgsql.query(self.db, f"SELECT vmail.self_alias_add('{self.jan}', 'a{i}@acme.lublin.pl', 'jan')")
        errors = self.race([f"SELECT vmail.self_alias_add('{self.jan}', 'r{i}@acme.lublin.pl', 'jan')"
                            for i in range(20)])
        self.assertEqual(sum(e is None for e in errors), 1, errors)
        self.assertTrue(all("VMR01" in e for e in errors if e is not None))
        self.assertEqual(pgsql.query(self.db, "SELECT count(*) FROM vmail.alias WHERE counts"), "5")

    def test_last_domain_slot(self):
        for i in range(4):
            pgsql.query(self.db, f"SELECT vmail.account_add('j{i}@acme.lublin.pl', 'free', 'jan', NULL, 1024)")
        errors = self.race([f"SELECT vmail.account_add('e{i}@acme.lublin.pl', 'free', 'ewa', NULL, 1024)"
                            for i in range(20)])
        self.assertEqual(sum(e is None for e in errors), 1, errors)
        self.assertTrue(all("VMR04" in e for e in errors if e is not None))

    def test_domain_alias_chain(self):
        """Linking a -> b and b -> c at once would make a chain: exactly one of them wins."""
        for d in ("a.pl", "b.pl", "c.pl"):
            pgsql.query(self.db, f"SELECT vmail.domain_add('acme', '{d}'), vmail.domain_set_state('{d}', 'active')")
        for _ in range(3):
            pgsql.query(self.db, "UPDATE vmail.domain SET alias_of = NULL")
            errors = self.race(["SELECT vmail.domain_alias('a.pl', 'b.pl')",
                                "SELECT vmail.domain_alias('b.pl', 'c.pl')"])
            self.assertEqual(sum(e is None for e in errors), 1, errors)
            self.assertTrue(all("VM409" in e and "no chains" in e for e in errors if e is not None), errors)
            self.assertEqual(pgsql.query(self.db, "SELECT count(*) FROM vmail.domain a JOIN vmail.domain t"
                                         " ON t.id = a.alias_of WHERE t.alias_of IS NOT NULL"), "0")

    def test_same_address(self):
        errors = self.race(["SELECT vmail.alias_add('same@acme.lublin.pl', ARRAY['ewa'], false)"
                            for _ in range(20)])
        self.assertEqual(sum(e is None for e in errors), 1, errors)
        self.assertTrue(all("VMR07" in e for e in errors if e is not None), errors)


class VmailUidTest(unittest.TestCase):
    """No shell account has the uid of paid mailboxes (setting vmail_uid): it would own
    their files and quota counters.  Refused both ways, for every writer, changing nothing."""

    SHELL_UID = "VM409: uid 5000 is vmail_uid, the uid of paid mailboxes"
    SETTING = "VM409: vmail_uid 2001: uid 2001 belongs to shell account jan"

    REFUSED = [
        ("SELECT vmail.shell_add('acme', 'ola', 5000, 5000, '/home/ola', NULL, 1048576)", SHELL_UID),
        ("INSERT INTO vmail.shell_account (customer_id, login, uid, gid, home, disk_limit)"
         " SELECT id, 'ola', 5000, 2003, '/home/ola', 1048576 FROM vmail.customer WHERE name = 'acme'",
         SHELL_UID),
        ("UPDATE vmail.shell_account SET uid = 5000 WHERE login = 'jan'", SHELL_UID),
        ("SELECT vmail.setting_set('vmail_uid', '2001')", SETTING),
        ("UPDATE vmail.settings SET vmail_uid = 2001", SETTING),
    ]

    def setUp(self):
        self.db = pgsql.fresh_database("vmailuid_" + self._testMethodName[5:])
        self.sql("SELECT vmail.customer_add('acme', 'Acme')")
        self.sql("SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', NULL, 1048576)")

    def sql(self, q):
        return pgsql.query(self.db, q)

    def snapshot(self):
        return self.sql("SELECT (SELECT string_agg(login || ':' || uid, ',' ORDER BY login) FROM vmail.shell_account),"
                        " (SELECT vmail_uid FROM vmail.settings), (SELECT count(*) FROM vmail.audit_log),"
                        " (SELECT count(*) FROM vmail.address)")

    def test_refused_both_ways(self):
        for q, text in self.REFUSED:
            with self.subTest(q=q):
                before = self.snapshot()
                err = pgsql.error(self.db, q)
                self.assertIsNotNone(err, q)
                self.assertIn(text, err.replace("\n", " "))
                self.assertEqual(before, self.snapshot(), "a refused change left traces")

    def test_other_uids_pass(self):
        # The same uid for gid is not refused here (only the uid owns the counters).
        self.sql("SELECT vmail.shell_add('acme', 'ola', 5001, 5000, '/home/ola', NULL, 1048576)")
        self.sql("UPDATE vmail.shell_account SET uid = 2002 WHERE login = 'jan'")
        self.sql("SELECT vmail.setting_set('vmail_uid', '2001')")
        self.assertEqual(self.sql("SELECT vmail_uid FROM vmail.settings"), "2001")
        # Once vmail_uid moved, 5000 is free for a shell account, and 2001 is not.
        self.sql("SELECT vmail.shell_add('acme', 'ewa', 5000, 5000, '/home/ewa', NULL, 1048576)")
        err = pgsql.error(self.db, "UPDATE vmail.shell_account SET uid = 2001 WHERE login = 'jan'")
        self.assertIn("VM409: uid 2001 is vmail_uid", err or "")
        # Other settings and other columns of a shell account are not held up.
        self.sql("SELECT vmail.setting_set('alias_limit', '7')")
        self.sql("SELECT vmail.shell_set('ewa', 'disk_limit', '2097152')")

    def test_old_clash_is_reported(self):
        """A clash from before the guard stays (the triggers guard changes), but applying the
        rules file (vmailctl db migrate does) warns about it, naming the account."""
        self.sql("ALTER TABLE vmail.shell_account DISABLE TRIGGER shell_account_before;"
                 " UPDATE vmail.shell_account SET uid = 5000 WHERE login = 'jan';"
                 " ALTER TABLE vmail.shell_account ENABLE TRIGGER shell_account_before")
        with open(os.path.join(pgsql.SCHEMA, "R_rules.sql")) as f:
            r = pgsql._psql(self.db, f.read())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("WARNING:  01000: shell account jan (uid 5000) has the uid of paid mailboxes",
                      r.stderr)

    def test_race(self):
        """A shell account and vmail_uid racing for the same uid: exactly one gets it."""
        for i in range(5):
            uid = 3000 + i
            start = pgsql.query(self.db, "SELECT clock_timestamp() + interval '1 second'")
            barrier = f"SELECT pg_sleep_until('{start}'); "
            statements = [f"SELECT vmail.shell_add('acme', 'r{i}', {uid}, {uid}, '/home/r', NULL, 1048576)",
                          f"SELECT vmail.setting_set('vmail_uid', '{uid}')"]
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                errors = list(pool.map(lambda s: pgsql.error(self.db, barrier + s), statements))
            self.assertEqual(sum(e is None for e in errors), 1, errors)
            self.assertTrue(all("VM409" in e for e in errors if e is not None), errors)
            clash = self.sql("SELECT count(*) FROM vmail.shell_account s JOIN vmail.settings v"
                             " ON v.vmail_uid = s.uid")
            self.assertEqual(clash, "0")


class SettingsTest(unittest.TestCase):
    """Mail locations are paths: kept as written (case too), and only what Dovecot 2.3's
    "mail" and 2.4's split settings both read is admitted."""

    ACCEPTED = [
        "maildir:~/Maildir",
        "maildir:~/Mail/Maildir:LAYOUT=fs",
        "mbox:~/mail:INBOX=/var/mail/Jan",
        "sdbox:/srv/Mail/box:INDEX=/srv/Index:CONTROL=~/Control",
    ]
    REFUSED = [
        ("", 'must be "driver:path"'),
        ("~/Maildir", 'must be "driver:path"'),
        ("imapc:~/x", 'must be "driver:path"'),
        ("maildir:~/Maildir/%u", "%-variables"),
        ("maildir:Maildir", "must start with ~/ or /"),
        ("maildir:~jan/Maildir", "must start with ~/ or /"),
        ("maildir:~/Mail dir", "spaces or control characters"),
        ("maildir:~/Maildir:INBOX=relative", 'option "INBOX=relative"'),
        ("maildir:~/Maildir:INDEX=~ewa/idx", 'option "INDEX=~ewa/idx"'),
        ("maildir:~/Maildir:LAYOUT=nested", 'option "LAYOUT=nested"'),
        ("maildir:~/Maildir:VOLATILEDIR=/tmp", 'option "VOLATILEDIR=/tmp"'),
        ("maildir:~/" + "x" * 1100, "longer than 1024"),
    ]

    def setUp(self):
        self.db = pgsql.fresh_database("settings_" + self._testMethodName[5:])

    def current(self, key):
        return pgsql.query(self.db, f"SELECT {key} FROM vmail.settings").strip()

    def test_mail_location(self):
        for key in ("shell_mail_location", "free_mail_location", "paid_mail_location"):
            for value in self.ACCEPTED:
                with self.subTest(key=key, value=value):
                    pgsql.query(self.db, f"SELECT vmail.setting_set('{key}', '{value}')")
                    self.assertEqual(self.current(key), value)
            pgsql.query(self.db, f"SELECT vmail.setting_set('{key}', 'maildir:~/Maildir')")
            for value, text in self.REFUSED:
                with self.subTest(key=key, value=value):
                    err = pgsql.error(self.db, f"SELECT vmail.setting_set('{key}', '{value}')")
                    self.assertIsNotNone(err)
                    self.assertIn("VM400", err)
                    self.assertIn(text, err)
                    self.assertEqual(self.current(key), "maildir:~/Maildir")

    def test_home_template_keeps_case(self):
        pgsql.query(self.db, "SELECT vmail.setting_set('paid_home_template', '/srv/Mail/%d/%n.%i')")
        self.assertEqual(self.current("paid_home_template"), "/srv/Mail/%d/%n.%i")

    def test_home_template_needs_the_id(self):
        """Without %i a re-created address would get the old holder's directory."""
        self.assertEqual(self.current("free_home_template"), "%h/mail/%d/%n.%i")
        self.assertEqual(self.current("paid_home_template"), "/var/vmail/%d/%n.%i")
        for key, value, text in (("paid_home_template", "/srv/%d/%n", "must contain %i"),
                                 ("free_home_template", "%h/mail/%d/%n", "must contain %i"),
                                 ("paid_home_template", "srv/%d/%n.%i", "absolute"),
                                 ("paid_home_template", "%h/%d/%n.%i", "%h"),
                                 ("free_home_template", "%h/../%d/%n.%i", ".."),
                                 ("free_home_template", "/x/%n.%i\n", "absolute")):
            with self.subTest(key=key, value=value):
                before = self.current(key)
                err = pgsql.error(self.db, f"SELECT vmail.setting_set('{key}', E'{value}')")
                self.assertIsNotNone(err)
                self.assertIn("VM400", err)
                self.assertIn(text, err)
                self.assertEqual(self.current(key), before)
        pgsql.query(self.db, "SELECT vmail.setting_set('free_home_template', '/srv/mail/%i/%n@%d')")
        self.assertEqual(self.current("free_home_template"), "/srv/mail/%i/%n@%d")

    def test_home_template_id_ends_a_component(self):
        """%n%i would give x12 to x (id 12) and to x1 (id 2): %i must be a whole component
        or follow a '.' (a local part never ends with one) and end its component."""
        for value in ("/srv/%d/%n%i", "/srv/%d/%n-%i", "/srv/%d/%i%n", "/srv/%d/%n.%i.d", "/srv/%d/%n.%ix"):
            with self.subTest(value=value):
                err = pgsql.error(self.db, f"SELECT vmail.setting_set('paid_home_template', '{value}')")
                self.assertIsNotNone(err)
                self.assertIn("VM400", err)
                self.assertIn("%i", err)
        for value in ("/srv/%d/%n.%i", "/srv/%d/%i/%n", "/srv/%d/%n/%i", "/srv/%i"):
            with self.subTest(value=value):
                pgsql.query(self.db, f"SELECT vmail.setting_set('paid_home_template', '{value}')")
                self.assertEqual(self.current("paid_home_template"), value)


class MailboxHomeTest(unittest.TestCase):
    """A mail account's home is fixed when it is created (issue 16): stored in its row, with
    its id, so that deleting x@d and creating x@d again never hands over the old files; a
    deleted account's home waits in vmail.retired_mailbox for `vmailctl mailbox purge`."""

    def setUp(self):
        self.db = pgsql.fresh_database("home_" + self._testMethodName[5:])
        self.sql("SELECT vmail.customer_add('acme', 'Acme')")
        self.sql("SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', NULL, 100*1024*1024)")
        self.sql("SELECT vmail.domain_add('acme', 'acme.lublin.pl')")
        self.sql("SELECT vmail.domain_set_state('acme.lublin.pl', 'active')")
        self.sql("SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl')")

    def sql(self, q):
        return pgsql.query(self.db, q)

    def add(self, address, kind="free"):
        owner = "jan" if kind == "free" else "acme"
        return int(self.sql(f"SELECT vmail.account_add('{address}', '{kind}', '{owner}', NULL, 1048576)"))

    def dovecot_home(self, login):
        """The home every Dovecot lookup answers (dict userdb, 2.3 and 2.4 sql userdb)."""
        homes = {self.sql(f"SELECT json_extract_path_text(vmail.userdb_json('{login}')::json, 'home')"),
                 self.sql(f"SELECT home FROM vmail.userdb_effective('{login}')"),
                 self.sql(f"SELECT home FROM vmail.userdb_v24('{login}')"),
                 self.sql(f"SELECT home FROM vmail.userdb('{login}')")}
        self.assertEqual(len(homes), 1, homes)
        return homes.pop()

    def test_home_includes_the_id_and_is_stored(self):
        i = self.add("biuro@acme.lublin.pl")
        p = self.add("sklep@acme.lublin.pl", "paid")
        self.assertEqual(self.dovecot_home("biuro@acme.lublin.pl"), f"/home/jan/mail/acme.lublin.pl/biuro.{i}")
        self.assertEqual(self.dovecot_home("sklep@acme.lublin.pl"), f"/var/vmail/acme.lublin.pl/sklep.{p}")
        self.assertEqual(self.sql("SELECT string_agg(home, ',' ORDER BY id) FROM vmail.mail_account"
                                  " WHERE address LIKE '%@acme.lublin.pl'"),
                         f"/home/jan/mail/acme.lublin.pl/biuro.{i},/var/vmail/acme.lublin.pl/sklep.{p}")

    def test_settings_change_moves_no_existing_home(self):
        i = self.add("biuro@acme.lublin.pl")
        self.sql("SELECT vmail.setting_set('free_home_template', '/srv/free/%d/%n.%i')")
        self.assertEqual(self.dovecot_home("biuro@acme.lublin.pl"), f"/home/jan/mail/acme.lublin.pl/biuro.{i}")
        j = self.add("kadry@acme.lublin.pl")
        self.assertEqual(self.dovecot_home("kadry@acme.lublin.pl"), f"/srv/free/acme.lublin.pl/kadry.{j}")

    def test_recreated_address_gets_a_new_home_and_the_old_one_is_retired(self):
        old = self.add("x@acme.lublin.pl")
        old_home = self.dovecot_home("x@acme.lublin.pl")
        self.sql("SELECT vmail.quota_set('x@acme.lublin.pl', 4096, 2)")
        self.assertEqual(self.sql("SELECT free_mailboxes FROM vmail.quota_state('jan')"), "4096")
        self.sql("SELECT vmail.account_del('x@acme.lublin.pl')")
        # Its usage goes with it: R6 no longer counts the retired files.
        self.assertEqual(self.sql("SELECT free_mailboxes || ' ' || total FROM vmail.quota_state('jan')"), "0 0")
        self.assertEqual(self.sql(f"SELECT count(*) FROM vmail.mailbox_usage WHERE mail_account_id = {old}"), "0")
        new = self.add("x@acme.lublin.pl")
        self.assertNotEqual(old, new)
        self.assertEqual(self.dovecot_home("x@acme.lublin.pl"), f"/home/jan/mail/acme.lublin.pl/x.{new}")
        self.assertEqual(self.sql("SELECT mail_account_id || ' ' || address || ' ' || home || ' ' || uid || ' ' || gid"
                                  " || ' ' || (deleted_at > now() - interval '1 hour') FROM vmail.retired_mailbox"),
                         f"{old} x@acme.lublin.pl {old_home} 2001 2001 true")
        # A paid account's files belong to the vmail uid.
        self.add("sklep@acme.lublin.pl", "paid")
        self.sql("SELECT vmail.account_del('sklep@acme.lublin.pl')")
        self.assertEqual(self.sql("SELECT uid || ' ' || gid FROM vmail.retired_mailbox WHERE address LIKE 'sklep@%'"),
                         "5000 5000")

    def test_self_service_delete_retires_too(self):
        self.sql(f"UPDATE vmail.shell_account SET password = '{pgsql.SELF_HASH}'")
        token = pgsql.self_token(self.db, "jan")
        i = self.add("x@acme.lublin.pl")
        self.sql(f"SELECT vmail.self_account_del('{token}', 'x@acme.lublin.pl')")
        self.assertEqual(self.sql("SELECT mail_account_id FROM vmail.retired_mailbox"), str(i))

    def test_shell_home_change_carries_its_free_homes(self):
        """A shell account's home moves with its contents (usermod -m), free mailboxes inside
        it too; homes outside it (another template) and paid accounts stay."""
        i = self.add("biuro@acme.lublin.pl")
        self.sql("SELECT vmail.setting_set('free_home_template', '/srv/free/%d/%n.%i')")
        j = self.add("kadry@acme.lublin.pl")
        self.sql("SELECT vmail.shell_set('jan', 'home', '/home2/jan')")
        self.assertEqual(self.dovecot_home("biuro@acme.lublin.pl"), f"/home2/jan/mail/acme.lublin.pl/biuro.{i}")
        self.assertEqual(self.dovecot_home("kadry@acme.lublin.pl"), f"/srv/free/acme.lublin.pl/kadry.{j}")

    def legacy_home(self, address, home):
        """A row as 013 left it: a home an old template made, without the id."""
        self.sql(f"ALTER TABLE vmail.mail_account DISABLE TRIGGER USER;"
                 f" UPDATE vmail.mail_account SET home = '{home}' WHERE address = '{address}';"
                 f" ALTER TABLE vmail.mail_account ENABLE TRIGGER USER")

    def next_id(self, n):
        self.sql(f"SELECT setval('vmail.mail_account_id_seq', {n - 1})")

    def test_new_home_never_meets_a_legacy_or_retired_one(self):
        """013 appends ".%i" to old templates, so john.2024@d's legacy home .../john.2024 is
        what john@d would get as id 2024: such a home is skipped for the next id, as are a
        retired home, one inside or above a live home, and a shell account's home."""
        base = "/home/jan/mail/acme.lublin.pl"
        self.sql("SELECT vmail.setting_set('free_account_limit', '10')")
        self.sql("SELECT vmail.setting_set('free_per_domain_limit', '10')")
        self.add("john.2024@acme.lublin.pl")
        self.legacy_home("john.2024@acme.lublin.pl", f"{base}/john.2024")
        self.next_id(2024)
        self.assertEqual(self.add("john@acme.lublin.pl"), 2025)
        self.assertEqual(self.dovecot_home("john@acme.lublin.pl"), f"{base}/john.2025")
        self.sql("INSERT INTO vmail.retired_mailbox (mail_account_id, address, home, uid, gid)"
                 f" VALUES (1, 'z@acme.lublin.pl', '{base}/z.2030', 2001, 2001)")
        self.next_id(2030)
        self.assertEqual(self.add("z@acme.lublin.pl"), 2031)
        self.add("w.legacy@acme.lublin.pl")
        self.legacy_home("w.legacy@acme.lublin.pl", f"{base}/w.2040//Maildir")
        self.next_id(2040)
        self.assertEqual(self.add("w@acme.lublin.pl"), 2041)
        self.add("2046@acme.lublin.pl")
        self.legacy_home("2046@acme.lublin.pl", f"{base}/2046")
        self.sql("SELECT vmail.setting_set('free_home_template', '%h/mail/%d/%i/%n')")
        self.next_id(2046)
        self.assertEqual(self.add("a@acme.lublin.pl"), 2047)
        self.sql("SELECT vmail.shell_add('acme', 'ola', 2002, 2002, '/var/vmail/acme.lublin.pl/v.2050/', NULL, 1)")
        self.next_id(2050)
        self.assertEqual(self.add("v@acme.lublin.pl", "paid"), 2051)
        self.assertEqual(self.dovecot_home("v@acme.lublin.pl"), "/var/vmail/acme.lublin.pl/v.2051")
        # A few tries, then a clear refusal (nothing is created).
        self.sql("INSERT INTO vmail.retired_mailbox (mail_account_id, address, home, uid, gid)"
                 f" SELECT 1, 'q@acme.lublin.pl', '/var/vmail/acme.lublin.pl/q.' || i, 5000, 5000"
                 " FROM generate_series(3000, 3020) i")
        self.next_id(3000)
        err = pgsql.error(self.db, "SELECT vmail.account_add('q@acme.lublin.pl', 'paid', 'acme', NULL, 1048576)")
        self.assertIsNotNone(err)
        self.assertIn("VM409", err)
        self.assertIn("/var/vmail/acme.lublin.pl/q.", err)
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.mail_account WHERE address = 'q@acme.lublin.pl'"), "0")

    def test_home_expand_normalises_shell_home_and_slashes(self):
        """A shell home with a trailing slash gave '//' in every free home (refused by the
        purge forever); a '/' in a local part nested one account's home in another's."""
        self.sql("SELECT vmail.shell_set('jan', 'home', '/home/jan/')")
        i = self.add("x@acme.lublin.pl")
        j = self.add("x.1/y@acme.lublin.pl")
        self.assertEqual(self.dovecot_home("x@acme.lublin.pl"), f"/home/jan/mail/acme.lublin.pl/x.{i}")
        self.assertEqual(self.dovecot_home("x.1/y@acme.lublin.pl"), f"/home/jan/mail/acme.lublin.pl/x.1_y.{j}")

    def test_retired_home_with_double_slashes_is_normalised(self):
        """A legacy home '/home/jan//mail/d/x' is purged as '/home/jan/mail/d/x'."""
        self.sql("INSERT INTO vmail.retired_mailbox (mail_account_id, address, home, uid, gid) VALUES"
                 " (900, 'a@acme.lublin.pl', '/home/jan//mail/acme.lublin.pl/a/', 2001, 2001),"
                 " (901, 'b@acme.lublin.pl', '/home/jan//', 2001, 2001)")
        rows = self.sql("SELECT address || ' ' || home || ' ' || coalesce(refused, '-') FROM vmail.retired_due('0 s')"
                        " ORDER BY address").splitlines()
        self.assertEqual(rows, ["a@acme.lublin.pl /home/jan/mail/acme.lublin.pl/a -",
                                "b@acme.lublin.pl /home/jan a shell account's home or a directory above one"])

    def test_shell_home_change_carries_its_retired_homes(self):
        """Files of deleted free accounts move with the shell's home too: the purge must look
        for them where they are now."""
        self.add("x@acme.lublin.pl")
        self.sql("SELECT vmail.account_del('x@acme.lublin.pl')")
        old = self.sql("SELECT home FROM vmail.retired_mailbox")
        self.sql("INSERT INTO vmail.retired_mailbox (mail_account_id, address, home, uid, gid) VALUES"
                 " (900, 'other@acme.lublin.pl', '/home/jan/mail/other', 2002, 2002),"
                 " (901, 'out@acme.lublin.pl', '/srv/jan/out', 2001, 2001)")
        self.sql("SELECT vmail.shell_set('jan', 'home', '/home2/jan')")
        self.assertEqual(self.sql("SELECT string_agg(home, ' ' ORDER BY id) FROM vmail.retired_mailbox"),
                         " ".join(["/home2/jan" + old[len("/home/jan"):], "/home/jan/mail/other", "/srv/jan/out"]))

    def test_only_the_shell_home_move_changes_a_home(self):
        """A trigger nested under another one cannot change a home either: only
        shell_account_home_moved's flag admits it."""
        self.add("biuro@acme.lublin.pl")
        self.sql("CREATE FUNCTION public.sneak() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                 " UPDATE vmail.mail_account SET home = '/etc'; RETURN NULL; END $$;"
                 " CREATE TRIGGER sneak AFTER UPDATE ON vmail.customer FOR EACH ROW EXECUTE FUNCTION public.sneak()")
        err = pgsql.error(self.db, "UPDATE vmail.customer SET name = name")
        self.assertIsNotNone(err)
        self.assertIn("home is fixed", err)
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.mail_account WHERE home = '/etc'"), "0")

    def test_home_cannot_be_set_by_hand(self):
        self.add("biuro@acme.lublin.pl")
        err = pgsql.error(self.db, "UPDATE vmail.mail_account SET home = '/etc'")
        self.assertIsNotNone(err)
        self.assertIn("home", err)

    def test_purge_candidates_and_refusals(self):
        """vmail.retired_due lists what `vmailctl mailbox purge` may remove, and says why not."""
        self.add("x@acme.lublin.pl")
        live = self.add("y@acme.lublin.pl")
        self.sql("SELECT vmail.account_del('x@acme.lublin.pl')")
        self.sql("INSERT INTO vmail.retired_mailbox (mail_account_id, address, home, uid, gid) VALUES"
                 " (900, 'a@acme.lublin.pl', '/home/jan', 2001, 2001),"
                 " (901, 'b@acme.lublin.pl', '/home', 2001, 2001),"
                 f" (902, 'c@acme.lublin.pl', '/home/jan/mail/acme.lublin.pl/y.{live}', 2001, 2001),"
                 f" (903, 'd@acme.lublin.pl', '/home/jan/mail/acme.lublin.pl/y.{live}/Maildir', 2001, 2001),"
                 " (904, 'e@acme.lublin.pl', '/home/jan/mail', 2001, 2001),"
                 " (905, 'f@acme.lublin.pl', '/home/jan/mail/../../etc', 2001, 2001),"
                 " (906, 'g@acme.lublin.pl', '/', 0, 0)")
        rows = self.sql("SELECT address || ' ' || coalesce(refused, '-') FROM vmail.retired_due('0 s')"
                        " ORDER BY address").splitlines()
        self.assertEqual(rows, [
            "a@acme.lublin.pl a shell account's home or a directory above one",
            "b@acme.lublin.pl a shell account's home or a directory above one",
            "c@acme.lublin.pl the home of a mail account, inside one or above one",
            "d@acme.lublin.pl the home of a mail account, inside one or above one",
            "e@acme.lublin.pl the home of a mail account, inside one or above one",
            "f@acme.lublin.pl not an absolute path without . and .. components",
            "g@acme.lublin.pl not an absolute path without . and .. components",
            "x@acme.lublin.pl -"])
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.retired_due('1 day')"), "0")
        self.sql("SELECT vmail.retired_forget(id) FROM vmail.retired_mailbox WHERE address = 'x@acme.lublin.pl'")
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.retired_mailbox"), "7")


if __name__ == "__main__":
    unittest.main()
