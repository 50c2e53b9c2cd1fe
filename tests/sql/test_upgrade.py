"""Upgrading a version-11 database made by the old versioned-only migrations.

tests/fixtures/schema-v11.sql (see make-schema-v11.sh) is restored into a new database and
"vmailctl db migrate" runs alone.  The result must dump exactly like a fresh install, keep
its data and answer its lookups, and a second migrate must change nothing.  The schema files
themselves are checked too: each function, trigger and view is created in exactly one file.
Needs vmailctl (VMAIL_BUILD_DIR) and pg_dump.
"""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402


def setUpModule():
    if not os.access(pgsql.VMAILCTL, os.X_OK):
        raise unittest.SkipTest(f"no vmailctl at {pgsql.VMAILCTL} (set VMAIL_BUILD_DIR)")
    pgsql.server_up()


def new_database(name):
    pgsql.query("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pgsql.query("postgres", f"CREATE DATABASE {name}")
    return name


def schema_dump(db):
    """pg_dump --schema-only without vmail_meta, the bookkeeping: its rows say how the
    database got here (versions 1-11 and their checksums, or the baseline), which is the one
    thing allowed to differ.  A fixed --restrict-key: pg_dump would pick a random one for the
    \\restrict line each time.  No other normalisation."""
    r = subprocess.run(["pg_dump", "--schema-only", "--exclude-schema=vmail_meta", "--restrict-key=upgradetest",
                        "-h", pgsql.socket_dir(), "-U", "postgres", db],
                       capture_output=True, text=True, check=True)
    return r.stdout


def bookkeeping(db):
    return pgsql.query(db, "SELECT version, name, checksum, applied_at FROM vmail_meta.migrations ORDER BY 1;"
                           "SELECT name, checksum, applied_at FROM vmail_meta.repeatables ORDER BY 1")


class UpgradeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fresh = new_database("upgrade_fresh")
        cls.fresh_out = pgsql.migrate(cls.fresh)
        cls.old = new_database("upgrade_v11")
        pgsql.restore_fixture(cls.old)
        cls.fixture_rows = cls.counts(cls.old)
        cls.upgrade_out = pgsql.migrate(cls.old)

    @staticmethod
    def counts(db):
        return pgsql.query(db, "SELECT " + ", ".join(
            f"(SELECT count(*) FROM vmail.{t})" for t in
            ("customer", "domain", "shell_account", "mail_account", "alias", "alias_target", "address",
             "mailbox_usage", "files_usage", "audit_log", "grant_log")))

    def test_fresh_install_runs_everything(self):
        self.assertIn("applied R_valid\napplied 011_baseline\n", self.fresh_out)
        self.assertTrue(self.fresh_out.rstrip().endswith("applied grants\nschema upgraded to version 19 "
                                                          "(9 migrations and 17 definition files applied)"),
                        self.fresh_out)

    def test_upgrade_skips_the_baseline(self):
        self.assertNotIn("011_baseline", self.upgrade_out)
        self.assertIn("applied 012_self_sessions\n", self.upgrade_out)
        self.assertIn("applied 013_mailbox_home\n", self.upgrade_out)
        self.assertIn("applied 014_usage_recount\n", self.upgrade_out)
        self.assertIn("schema upgraded to version 19", self.upgrade_out)
        self.assertEqual(pgsql.query(self.old, "SELECT max(version), count(*) FROM vmail_meta.migrations"), "19|18")

    def test_same_schema_as_fresh(self):
        fresh, old = schema_dump(self.fresh), schema_dump(self.old)
        self.assertIn("CREATE FUNCTION vmail.lookup_alias", fresh)
        self.assertEqual(fresh, old)

    def test_data_kept_and_resolves(self):
        self.assertEqual(self.counts(self.old), self.fixture_rows)
        q = lambda s: pgsql.query(self.old, s)  # noqa: E731
        self.assertEqual(q("SELECT vmail.lookup_domain('LEGACY-two.pl')"), "legacy-two.pl")
        self.assertEqual(q("SELECT vmail.lookup_domain('legacy-three.pl')"), "")  # awaiting proof
        self.assertEqual(q("SELECT vmail.lookup_alias('oldkontakt@legacy-two.pl')"),
                         "oldsklep@legacy-two.pl,oldewa@platon.man.lublin.pl,someone@example.org")
        self.assertEqual(q("SELECT vmail.lookup_alias('nobody+x@legacy-two.pl')"), "oldsklep@legacy-two.pl")
        self.assertEqual(q("SELECT vmail.lookup_alias('postmaster@legacy-one.lublin.pl')"),
                         "oldbiuro@legacy-one.lublin.pl")
        self.assertEqual(q("SELECT vmail.lookup_mailbox('oldbiuro+tag@legacy-one.lublin.pl')"),
                         "oldbiuro@legacy-one.lublin.pl")
        self.assertEqual(q("SELECT vmail.lookup_sender('oldbiuro@legacy-one.lublin.pl')"),
                         "oldbiuro@legacy-one.lublin.pl,oldjan")
        self.assertEqual(q("SELECT vmail.passdb_json('oldjan')"),
                         '{"user" : "oldjan", "password" : "{SHA512-CRYPT}$6$legacy$oldjannew"}')
        self.assertEqual(q("SELECT vmail.passdb_json('oldewa')"), "")  # suspended (R9)
        self.assertEqual(q("SELECT vmail.userdb_json('oldewa')"), '{"tempfail" : "yes"}')
        self.assertEqual(q("SELECT vmail.quota_get('oldsklep@legacy-two.pl', 'storage', 'mailbox')"), "5120")
        self.assertEqual(q("SELECT vmail.quota_get('oldjan', 'storage', 'account')"), str(1048576 + 2097152 + 5242880))
        # Existing mail accounts keep exactly the home they had (013 stored it); new ones get their id.
        self.assertEqual(q("SELECT string_agg(address || ' ' || home, ', ' ORDER BY id) FROM vmail.mail_account"),
                         "oldbiuro@legacy-one.lublin.pl /home/oldjan/mail/legacy-one.lublin.pl/oldbiuro, "
                         "oldsklep@legacy-two.pl /var/vmail/legacy-two.pl/oldsklep")
        self.assertEqual(q("SELECT home FROM vmail.userdb_effective('oldbiuro@legacy-one.lublin.pl')"),
                         "/home/oldjan/mail/legacy-one.lublin.pl/oldbiuro")
        self.assertEqual(q("SELECT free_home_template || ' ' || paid_home_template FROM vmail.settings"),
                         "%h/mail/%d/%n.%i /var/vmail/%d/%n.%i")
        self.assertEqual(q("SELECT vmail.policy_check('oldewa@platon.man.lublin.pl', 10)"),
                         "suspended\toldewa@platon.man.lublin.pl")
        # the rules still hold for the old rows (R2 counts, R7 sees the old addresses)
        err = pgsql.error(self.old, "SELECT vmail.account_add('oldkontakt@legacy-two.pl', 'paid', 'legacy', NULL, 1024)")
        self.assertIn("VMR07", err)

    def test_second_migrate_changes_nothing(self):
        before = (bookkeeping(self.old), schema_dump(self.old))
        out = pgsql.migrate(self.old)
        self.assertEqual(out.strip(), "schema is up to date at version 19")
        self.assertEqual((bookkeeping(self.old), schema_dump(self.old)), before)


# CREATE [OR REPLACE] [CONSTRAINT] TRIGGER name ... ON table, FUNCTION/VIEW name: one file each.
DEFINITION = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:CONSTRAINT\s+)?(TRIGGER)\s+(\w+)[^;]*?\sON\s+([\w.]+)"
    r"|(FUNCTION|(?:MATERIALIZED\s+)?VIEW)\s+([\w.]+))",
    re.IGNORECASE | re.MULTILINE)


class OneDefinitionTest(unittest.TestCase):
    def definitions(self):
        found = {}
        for name in sorted(os.listdir(pgsql.SCHEMA)):
            if not name.endswith(".sql"):
                continue
            with open(os.path.join(pgsql.SCHEMA, name)) as f:
                text = f.read()
            for m in DEFINITION.finditer(text):
                key = (f"trigger {m.group(2)} on {m.group(3)}" if m.group(1)
                       else f"{m.group(4).lower()} {m.group(5)}").lower()
                found.setdefault(key, []).append(name)
        return found

    def test_each_object_defined_once(self):
        found = self.definitions()
        self.assertGreater(len(found), 100)
        twice = {k: v for k, v in found.items() if len(v) > 1}
        self.assertEqual(twice, {})

    def test_versioned_files_define_no_code(self):
        code = {k: v for k, v in self.definitions().items() if any(f[0].isdigit() for f in v)}
        self.assertEqual(code, {})

    def test_every_function_in_the_database_is_in_a_file(self):
        # so "where does X live" always has an answer among the files
        db = new_database("upgrade_names")
        pgsql.migrate(db)
        names = pgsql.query(db, "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                                " WHERE n.nspname = 'vmail' ORDER BY 1").split("\n")
        found = self.definitions()
        self.assertEqual([n for n in names if f"function vmail.{n}" not in found], [])


if __name__ == "__main__":
    unittest.main()
