#!/usr/bin/env python3
"""test_vmailctl: vmailctl against a private PostgreSQL — the "Done when" world of issue 2
step by step, every refusal (message, exit status, nothing changed), migrations, --help,
JSON output and a race for the last R1 slot.

Environment: VMAIL_BUILD_DIR (default <repo>/build) holds the vmailctl binary.
Run: python3 -m unittest tests/e2e/test_vmailctl.py -v
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VMAIL_BUILD_DIR", os.path.join(REPO, "build"))
VMAILCTL = os.path.join(BUILD, "vmailctl")
SCHEMA = os.path.join(REPO, "schema")
PG_SH = os.path.join(REPO, "tests", "world", "pg.sh")
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1] if glob.glob("/usr/lib/postgresql/*/bin") else ""

# Tables whose content must not move when a command is refused.
TABLES = ["customer", "domain", "shell_account", "mail_account", "alias", "alias_target",
          "address", "grant_log", "audit_log", "files_usage", "settings"]


class PG:
    """A private PostgreSQL in a temp directory the postgres user can reach."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vmailctl-e2e-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.pgdir = os.path.join(self.dir, "pg")
        out = subprocess.run([PG_SH, "start", self.pgdir], check=True, capture_output=True, text=True)
        self.dsn = out.stdout.strip().splitlines()[-1]

    def psql(self, sql, dbname="vmail"):
        dsn = self.dsn.replace("dbname=vmail", "dbname=" + dbname)
        out = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-d", dsn,
                              "-c", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def config(self, name, dbname="vmail", extra=""):
        path = os.path.join(self.dir, name)
        dsn = self.dsn.replace("dbname=vmail", "dbname=" + dbname)
        with open(path, "w") as f:
            # vmaild's keys share the file; vmailctl must ignore them
            f.write("# test config\ndatabase = %s\nlisten_socketmap = unix:/nonexistent\n%s" % (dsn, extra))
        return path

    def stop(self):
        subprocess.run([PG_SH, "stop", self.pgdir], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def env():
    e = dict(os.environ)
    e["VMAIL_PWHASH_COST"] = "test"
    e.pop("VMAIL_SCHEMA_DIR", None)
    e.pop("VMAIL_CONFIG", None)
    return e


class Base(unittest.TestCase):
    pg = None
    conf = None

    @classmethod
    def setUpClass(cls):
        if not os.access(VMAILCTL, os.X_OK):
            raise unittest.SkipTest("no vmailctl at %s (set VMAIL_BUILD_DIR)" % VMAILCTL)
        cls.pg = PG()
        cls.conf = cls.pg.config("vmail.conf")
        rc, out, err = cls.ctl(["db", "migrate"])
        assert rc == 0, err

    @classmethod
    def tearDownClass(cls):
        if cls.pg:
            cls.pg.stop()

    @classmethod
    def ctl(cls, args, stdin=None, as_login=None, conf=None, pw_stdin=None, **kw):
        """Run vmailctl; passwords come from stdin (--password-stdin) whenever stdin is given."""
        argv = [VMAILCTL, "-c", conf or cls.conf, "--schema-dir", SCHEMA]
        if as_login:
            argv += ["--as", as_login]
        if pw_stdin if pw_stdin is not None else stdin is not None:
            argv += ["--password-stdin"]
        kw.setdefault("env", env())
        p = subprocess.run(argv + list(args), input=stdin, capture_output=True, text=True, timeout=60,
                           **kw)
        return p.returncode, p.stdout, p.stderr

    def ok(self, args, stdin=None, as_login=None):
        rc, out, err = self.ctl(args, stdin, as_login)
        self.assertEqual(rc, 0, "vmailctl %s: rc=%d stderr=%s" % (" ".join(args), rc, err))
        return out

    def snapshot(self):
        parts = ", ".join(
            "'%s', (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM vmail.%s t%s)"
            # --as logs in and out (self_login, self_logout): audited, but no configuration change
            % (t, t, " WHERE object_kind <> 'self_session'" if t == "audit_log" else "")
            for t in TABLES)
        return self.pg.psql("SELECT json_build_object(%s)" % parts)

    def refused(self, args, *substrings, stdin=None, as_login=None, rc=1):
        """The command fails with rc, one line on stderr naming the problem, and nothing changes."""
        before = self.snapshot()
        got, out, err = self.ctl(args, stdin, as_login)
        after = self.snapshot()
        what = "vmailctl %s%s" % ("--as %s " % as_login if as_login else "", " ".join(args))
        self.assertEqual(got, rc, "%s: rc=%d stdout=%s stderr=%s" % (what, got, out, err))
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, "%s: want one line, got %r" % (what, err))
        self.assertTrue(lines[0].startswith("vmailctl: "), lines[0])
        for s in substrings:
            self.assertIn(s, lines[0], what)
        self.assertEqual(before, after, "%s changed the database" % what)
        return lines[0]


class TestWorld(Base):
    """The "Done when" world of issue 2, in order."""

    def test_world(self):
        ok, refused = self.ok, self.refused
        # customer acme with shell accounts jan (disk limit 100M) and ewa
        ok(["customer", "add", "acme", "--display", "ACME sp. z o.o."])
        refused(["customer", "add", "acme"], "customer acme already exists")
        ok(["shell", "add", "acme", "jan", "--uid", "5001", "--gid", "5001", "--disk-limit", "100M"],
           stdin="janpass\n")
        ok(["shell", "add", "acme", "ewa", "--uid", "5002", "--gid", "5002", "--home", "/home/ewa",
            "--disk-limit", "1G"], stdin="ewapass\n")
        shells = json.loads(ok(["shell", "list", "--json"]))
        self.assertEqual({s["login"]: s["disk_limit"] for s in shells}, {"jan": 100 << 20, "ewa": 1 << 30})

        # domains acme.lublin.pl (local) and acme.com.pl (external, confirmed by the administrator)
        self.assertIn("local", ok(["domain", "add", "acme", "acme.lublin.pl"]))
        self.assertIn("external", ok(["domain", "add", "acme", "acme.com.pl"]))
        # an unconfirmed domain holds no addresses yet (R8)
        refused(["alias", "add", "early@acme.com.pl", "jan", "--owner", "jan"], "R8", "acme.com.pl")
        ok(["domain", "confirm", "acme.lublin.pl"])
        ok(["domain", "confirm", "acme.com.pl"])
        domains = {d["name"]: d for d in json.loads(ok(["domain", "list", "--json", "--customer", "acme"]))}
        self.assertEqual(domains["acme.lublin.pl"]["kind"], "local")
        self.assertEqual(domains["acme.com.pl"]["kind"], "external")
        self.assertTrue(all(d["state"] == "active" for d in domains.values()))

        # jan and ewa have mail domain acme.lublin.pl
        ok(["shell", "set", "jan", "--mail-domain", "acme.lublin.pl"])
        ok(["shell", "set", "ewa", "--mail-domain", "acme.lublin.pl"])
        self.assertEqual(json.loads(ok(["shell", "show", "jan", "--json"]))["mail_domain"], "acme.lublin.pl")

        # 5 self-service aliases of jan in both domains succeed, the 6th fails
        for i, dom in enumerate(["acme.lublin.pl", "acme.com.pl"] * 2 + ["acme.lublin.pl"]):
            ok(["alias", "add", "a%d@%s" % (i + 1, dom)], stdin="janpass\n", as_login="jan")
        refused(["alias", "add", "a6@acme.com.pl"], "R1", "jan", "5 of 5", stdin="janpass\n", as_login="jan")
        mine = json.loads(ok(["alias", "list", "--json"], stdin="janpass\n", as_login="jan"))
        self.assertEqual(len([a for a in mine if a["counts"]]), 5)

        # an administrator alias beyond that succeeds (and is recorded as a grant)
        ok(["alias", "add", "extra@acme.com.pl", "jan", "--admin", "--owner", "jan"])
        grants = json.loads(ok(["grant", "list", "jan", "--json"]))
        self.assertEqual([(g["what"], g["new_value"]) for g in grants], [("admin_alias", "extra@acme.com.pl")])
        self.assertTrue(grants[0]["granted_by"].startswith("admin:"))
        # an alias for jan without saying which kind is a usage error
        refused(["alias", "add", "x@acme.com.pl", "jan"], "--owner", "--admin", rc=2)

        # R5: free accounts whose quotas sum past 100M fail
        for i in range(1, 5):
            ok(["mailbox", "add", "m%d@acme.lublin.pl" % i, "--quota", "20M"],
               stdin="janpass\nmbox%d\n" % i, as_login="jan")
        refused(["mailbox", "add", "m5@acme.lublin.pl", "--quota", "30M"], "R5", "110 MiB", "100 MiB",
                stdin="janpass\nmbox5\n", as_login="jan")
        # 5 free mail accounts of jan in acme.lublin.pl succeed, the 6th fails (R2)
        ok(["mailbox", "add", "m5@acme.lublin.pl", "--quota", "20M"], stdin="janpass\nmbox5\n", as_login="jan")
        refused(["mailbox", "set", "m1@acme.lublin.pl", "--quota", "21M"], "R5", "101 MiB", "100 MiB",
                stdin="janpass\n", as_login="jan")
        refused(["mailbox", "add", "m6@acme.lublin.pl", "--quota", "1M"], "R2", "jan", "5 of 5",
                stdin="janpass\nmbox6\n", as_login="jan")
        refused(["mailbox", "add", "m6@acme.lublin.pl", "--owner", "jan", "--quota", "1M"], "R2", "5 of 5",
                stdin="mbox6\n")
        # one in acme.com.pl fails (R3)
        refused(["mailbox", "add", "m6@acme.com.pl", "--quota", "1M"], "R3", "acme.lublin.pl", "acme.com.pl",
                stdin="janpass\nmbox6\n", as_login="jan")
        # ewa's free accounts in acme.lublin.pl fail once the domain holds 5 (R4)
        refused(["mailbox", "add", "e1@acme.lublin.pl", "--quota", "1M"], "R4", "acme.lublin.pl", "5 of 5",
                stdin="ewapass\nebox1\n", as_login="ewa")
        refused(["mailbox", "add", "e1@acme.lublin.pl", "--owner", "ewa", "--quota", "1M"], "R4", "5 of 5",
                stdin="ebox1\n")
        # a paid account is outside the free limits
        ok(["mailbox", "add", "sales@acme.lublin.pl", "--paid", "--customer", "acme", "--quota", "1G"],
           stdin="salespw\n")

        usage = json.loads(ok(["usage", "show", "jan", "--json"]))
        self.assertEqual(usage["allocated"], 100 << 20)
        self.assertEqual(usage["disk_limit"], 100 << 20)
        self.assertEqual(len(usage["mailboxes"]), 5)
        ok(["usage", "set", "jan", "30M"])
        self.assertEqual(json.loads(ok(["usage", "show", "jan", "--json"]))["files"], 30 << 20)
        self_usage = json.loads(ok(["usage", "show", "--json"], stdin="janpass\n", as_login="jan"))
        self.assertEqual(self_usage["files"], 30 << 20)

        # the audit log names the actors
        log = json.loads(ok(["log", "--object", "acme.lublin.pl", "--json", "--limit", "500"]))
        actors = {e["actor"] for e in log}
        self.assertIn("self:jan", actors)
        self.assertTrue(any(a.startswith("admin:") for a in actors))
        self.assertIn("self:jan", ok(["log", "list", "--since", "1 hour", "--actor", "self:jan"]))

        # the mistakes of the issue, each refused with a clear line and no change
        refused(["shell", "add", "nosuch", "zed", "--uid", "5009", "--gid", "5009", "--disk-limit", "1M"],
                'unknown customer "nosuch"', stdin="x\n")
        refused(["domain", "add", "nosuch", "zed.lublin.pl"], 'unknown customer "nosuch"')
        refused(["shell", "add", "acme", "zed", "--uid", "5009", "--gid", "5009", "--disk-limit", "12X"],
                'invalid size "12X"', 'suffix "X"', stdin="x\n")
        refused(["usage", "set", "jan", "1.5M"], 'invalid size "1.5M"', "whole number")
        refused(["usage", "set", "jan", "-1"], "negative")
        refused(["mailbox", "add", "m7@acme.lublin.pl", "--quota", ""], "empty", stdin="janpass\n",
                as_login="jan")
        refused(["alias", "add", "jan", "--owner", "jan", "jan"], 'invalid address "jan": no domain')
        refused(["alias", "add", "nodomain", "jan"], "no domain", stdin="janpass\n", as_login="jan")
        ok(["customer", "add", "other"])
        ok(["domain", "add", "other", "other.lublin.pl"])
        ok(["domain", "confirm", "other.lublin.pl"])
        refused(["alias", "add", "x@other.lublin.pl"], "R8", "other.lublin.pl", "customer other",
                stdin="janpass\n", as_login="jan")
        refused(["shell", "set", "jan", "--mail-domain", "other.lublin.pl"], "R8", "other.lublin.pl")
        refused(["alias", "add", "x@acme.lublin.pl"], "wrong password", "jan", stdin="notjans\n",
                as_login="jan")
        refused(["alias", "add", "x@acme.lublin.pl"], "no password on standard input", stdin="",
                as_login="jan")
        # R7: an address is one thing
        refused(["alias", "add", "m1@acme.lublin.pl"], "R7", "m1@acme.lublin.pl", stdin="janpass\n",
                as_login="jan")
        # self-service stays inside its own account
        refused(["alias", "del", "extra@acme.com.pl"], "administrator", stdin="janpass\n", as_login="jan")
        refused(["mailbox", "del", "m1@acme.lublin.pl"], "does not belong", "ewa", stdin="ewapass\n",
                as_login="ewa")
        refused(["customer", "list"], "not available in self-service mode", stdin="janpass\n",
                as_login="jan", rc=2)
        refused(["shell", "show", "ewa"], "only itself", stdin="janpass\n", as_login="jan")
        # a grant lifts R1
        ok(["grant", "add", "jan", "alias-limit", "6", "--note", "asked nicely"])
        ok(["alias", "add", "a6@acme.com.pl"], stdin="janpass\n", as_login="jan")
        refused(["alias", "add", "a7@acme.com.pl"], "R1", "6 of 6", stdin="janpass\n", as_login="jan")
        refused(["grant", "add", "jan", "disk-limit", "12X"], 'invalid size "12X"')
        ok(["grant", "add", "jan", "disk-limit", "200M"])
        self.assertEqual(json.loads(ok(["shell", "show", "jan", "--json"]))["disk_limit"], 200 << 20)

        # passwords: a changed one works, the old one does not
        ok(["shell", "passwd"], stdin="janpass\nnewjan\n", as_login="jan")
        refused(["alias", "list"], "wrong password", stdin="janpass\n", as_login="jan")
        ok(["alias", "list"], stdin="newjan\n", as_login="jan")
        ok(["mailbox", "passwd", "m1@acme.lublin.pl"], stdin="newjan\nm1new\n", as_login="jan")
        hashes = self.pg.psql("SELECT password FROM vmail.mail_account WHERE address = 'm1@acme.lublin.pl'")
        self.assertTrue(hashes.startswith("{ARGON2ID}$argon2id$"), hashes)


class TestPasswords(Base):
    def test_import_and_upgrade(self):
        sha = ("{SHA512-CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8w"
               "iOQSpT0Y77vwPZN.Pq.H91p5hVO1")
        self.ok(["customer", "add", "imp"])
        self.refused(["shell", "add", "imp", "old", "--uid", "7001", "--gid", "7001", "--disk-limit", "10M",
                      "--password-hash", "{SSHA}abcdef"], "unknown password scheme {SSHA}")
        self.refused(["shell", "add", "imp", "old", "--uid", "7001", "--gid", "7001", "--disk-limit", "10M",
                      "--password-hash", sha[:-5]], "malformed {SHA512-CRYPT}")
        self.ok(["shell", "add", "imp", "old", "--uid", "7001", "--gid", "7001", "--disk-limit", "10M",
                 "--password-hash", sha])
        stored = lambda: self.pg.psql("SELECT password FROM vmail.shell_account WHERE login = 'old'")
        self.assertEqual(stored(), sha)
        self.refused(["alias", "list"], "wrong password", stdin="Secret\n", as_login="old")
        self.assertEqual(stored(), sha)
        self.ok(["alias", "list"], stdin="secret\n", as_login="old")
        self.assertTrue(stored().startswith("{ARGON2ID}$argon2id$"), stored())
        self.ok(["alias", "list"], stdin="secret\n", as_login="old")
        bcrypt = "{BLF-CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW"
        self.ok(["shell", "set", "old", "--password-hash", bcrypt])
        self.ok(["alias", "list"], stdin="secret\n", as_login="old")
        self.assertTrue(stored().startswith("{ARGON2ID}"))

    def test_no_terminal(self):
        self.ok(["customer", "add", "tty"])
        before = self.snapshot()
        rc, out, err = self.ctl(["shell", "add", "tty", "tt", "--uid", "7101", "--gid", "7101",
                                 "--disk-limit", "1M"], stdin="", pw_stdin=False,
                                start_new_session=True)
        self.assertEqual(rc, 1, err)
        self.assertIn("no terminal", err)
        self.assertEqual(before, self.snapshot())

    def test_suspended_cannot_log_in(self):
        self.ok(["customer", "add", "susp"])
        self.ok(["shell", "add", "susp", "sus", "--uid", "7201", "--gid", "7201", "--disk-limit", "1M"],
                stdin="pw\n")
        self.ok(["shell", "set", "sus", "--state", "suspended"])
        self.refused(["alias", "list"], "sus", stdin="pw\n", as_login="sus")


class TestVmailUid(Base):
    def test_vmail_uid_is_no_shell_accounts(self):
        """The uid of paid mailboxes (vmail_uid, 5000 by default) is refused to a shell account,
        and vmail_uid is refused a shell account's uid: one clear line, nothing changed."""
        self.ok(["customer", "add", "vu"])
        line = self.refused(["shell", "add", "vu", "paid", "--uid", "5000", "--gid", "5000",
                             "--disk-limit", "1M"], stdin="pw\n")
        self.assertEqual(line, "vmailctl: uid 5000 is vmail_uid, the uid of paid mailboxes: shell "
                               "account paid would own their files and quota counters")
        self.ok(["shell", "add", "vu", "vu1", "--uid", "7401", "--gid", "7401", "--disk-limit", "1M"],
                stdin="pw\n")
        line = self.refused(["settings", "set", "vmail_uid", "7401"])
        self.assertEqual(line, "vmailctl: vmail_uid 7401: uid 7401 belongs to shell account vu1, which "
                               "would own the paid mailboxes' files and quota counters")
        print("\n  " + line)


class TestRace(Base):
    def test_last_r1_slot(self):
        """20 self-service requests for the last alias slot: exactly one wins."""
        self.ok(["customer", "add", "race"])
        self.ok(["domain", "add", "race", "race.lublin.pl"])
        self.ok(["domain", "confirm", "race.lublin.pl"])
        self.ok(["shell", "add", "race", "racer", "--uid", "7301", "--gid", "7301", "--disk-limit", "1M"],
                stdin="rpw\n")
        for i in range(4):
            self.ok(["alias", "add", "r%d@race.lublin.pl" % i], stdin="rpw\n", as_login="racer")
        argv = [VMAILCTL, "-c", self.conf, "--schema-dir", SCHEMA, "--as", "racer", "--password-stdin",
                "alias", "add"]
        procs = [subprocess.Popen(argv + ["x%d@race.lublin.pl" % i], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
                 for i in range(20)]
        results = [p.communicate("rpw\n", timeout=120) + (p.returncode,) for p in procs]
        winners = [r for r in results if r[2] == 0]
        losers = [r for r in results if r[2] != 0]
        self.assertEqual(len(winners), 1, results)
        for out, err, rc in losers:
            self.assertEqual(rc, 1)
            self.assertIn("R1: shell account racer already has 5 of 5 self-service aliases", err)
        n = self.pg.psql("SELECT count(*) FROM vmail.alias a JOIN vmail.shell_account s"
                         " ON s.id = a.owner_shell_id WHERE s.login = 'racer' AND a.counts")
        self.assertEqual(n, "5")


class TestCli(Base):
    def nouns(self):
        out = self.ok(["--help"])
        block = out.split("Nouns:\n", 1)[1].split("\n\n", 1)[0]
        return [line.split()[0] for line in block.splitlines()]

    def test_help_everywhere(self):
        nouns = self.nouns()
        for n in ["customer", "shell", "domain", "alias", "mailbox", "grant", "usage", "log", "db"]:
            self.assertIn(n, nouns)
        for n in nouns:
            out = self.ok([n, "--help"])
            self.assertIn("usage: vmailctl %s" % n, out)
            verbs = [line.split()[0] for line in out.split("Verbs:\n", 1)[1].split("\n\n", 1)[0].splitlines()]
            self.assertTrue(verbs, n)
            for v in verbs:
                vout = self.ok([n, v, "--help"])
                self.assertIn("usage: vmailctl", vout)
                self.assertIn(" %s %s" % (n, v), vout)
        self.ok(["help"])
        rc, out, err = self.ctl(["--version"])
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("vmailctl "))

    def test_usage_errors(self):
        for args, msg in [([], "usage:"), (["frobnicate"], 'unknown noun "frobnicate"'),
                          (["customer"], "usage: vmailctl customer"),
                          (["customer", "frob"], 'unknown verb "frob"'),
                          (["customer", "add"], "needs NAME"),
                          (["customer", "add", "a", "b"], 'unexpected argument "b"'),
                          (["customer", "list", "--bogus"], "unknown option --bogus"),
                          (["shell", "add", "acme", "x"], "--disk-limit"),
                          (["log", "--limit"], "needs a value"),
                          (["mailbox", "add", "q@x.lublin.pl", "--quota", "1M"], "--owner")]:
            before = self.snapshot()
            rc, out, err = self.ctl(args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn(msg, err, args)
            self.assertEqual(before, self.snapshot())

    def test_domain_alias(self):
        """Issue 20: domain alias / unalias, shown by domain show and domain list --json."""
        ok, refused = self.ok, self.refused
        for c, d in (("dali", "dali.lublin.pl"), ("dali", "dali.com.pl"), ("dali", "dali.eu"),
                     ("dalo", "dalo.lublin.pl")):
            if c not in ok(["customer", "list"]):
                ok(["customer", "add", c])
            ok(["domain", "add", c, d])
            ok(["domain", "confirm", d])
        self.assertIn("the addresses of dali.lublin.pl answer at dali.com.pl",
                      ok(["domain", "alias", "dali.com.pl", "dali.lublin.pl"]))
        self.assertEqual(json.loads(ok(["domain", "show", "dali.com.pl", "--json"]))["alias_of"], "dali.lublin.pl")
        self.assertEqual(json.loads(ok(["domain", "show", "dali.lublin.pl", "--json"]))["alias_domains"],
                         ["dali.com.pl"])
        listed = {d["name"]: d["alias_of"] for d in json.loads(ok(["domain", "list", "--json", "--customer", "dali"]))}
        self.assertEqual(listed, {"dali.com.pl": "dali.lublin.pl", "dali.eu": None, "dali.lublin.pl": None})
        refused(["domain", "alias", "dali.eu", "dali.com.pl"], "no chains", "itself an alias of dali.lublin.pl")
        refused(["domain", "alias", "dalo.lublin.pl", "dali.lublin.pl"], "R8", "customer dalo")
        refused(["domain", "del", "dali.lublin.pl"], "target of the alias domains dali.com.pl", "unalias them first")
        refused(["domain", "unalias", "dali.eu"], "not an alias domain")
        refused(["domain", "alias", "dali.eu"], "needs ALIAS-DOMAIN TARGET-DOMAIN", rc=2)
        self.assertIn("no longer an alias domain", ok(["domain", "unalias", "dali.com.pl"]))
        self.assertIsNone(json.loads(ok(["domain", "show", "dali.com.pl", "--json"]))["alias_of"])
        log = json.loads(ok(["log", "--object", "dali.com.pl", "--json"]))
        self.assertGreaterEqual(sum('"alias_of"' in json.dumps(e) for e in log), 2, log)

    def test_client_setup(self):
        """Issue 22: the settings of mail programs' servers, and the records "domain show" lists."""
        ok, refused = self.ok, self.refused
        ok(["customer", "add", "mailco"])
        ok(["domain", "add", "mailco", "mailco.pl"])
        primary = ok(["settings", "show", "primary_domain"]).split()[-1]
        changes = [  # key, value as typed, as "settings set" echoes it, the default to go back to
            ("imap_host", " IMAP.isp.pl. ", "imap.isp.pl", ""),
            ("submission_host", "smtp.isp.pl", "smtp.isp.pl", ""),
            ("web_host", "WWW.isp.pl", "www.isp.pl", ""), ("imaps_port", "10993", "10993", "993"),
            ("client_services", "imaps, submission POP3S", "imaps submission pop3s",
             "imaps imap submissions submission"),
            ("service_name", " ISP Poczta ", "ISP Poczta", "Platon")]
        try:
            for key, value, shown, _ in changes:
                self.assertEqual(ok(["settings", "set", key, value]), "%s = %s\n" % (key, shown))
                self.assertEqual(ok(["settings", "show", key]).split(None, 1)[1].strip(), shown)
            want = [("_imaps._tcp.mailco.pl", "SRV", "0 1 10993 imap.isp.pl."),
                    ("_imap._tcp.mailco.pl", "SRV", "0 0 0 ."),
                    ("_pop3s._tcp.mailco.pl", "SRV", "0 1 995 %s." % primary),
                    ("_pop3._tcp.mailco.pl", "SRV", "0 0 0 ."),
                    ("_submissions._tcp.mailco.pl", "SRV", "0 0 0 ."),
                    ("_submission._tcp.mailco.pl", "SRV", "0 1 587 smtp.isp.pl."),
                    ("_autodiscover._tcp.mailco.pl", "SRV", "0 1 443 www.isp.pl."),
                    ("autoconfig.mailco.pl", "CNAME", "www.isp.pl.")]
            row, records = ok(["domain", "show", "MailCo.pl"]).split("\n\n", 1)
            self.assertIn("proof_record", row)  # what it printed before stays first
            self.assertTrue(records.startswith("; "), records)  # a zone file's comment
            self.assertEqual(records.splitlines()[1:], ["%s. %s %s" % r for r in want])
            shown = json.loads(ok(["domain", "show", "mailco.pl", "--json"]))
            self.assertEqual(shown["client_records"],
                             [dict(zip(("name", "type", "value"), r)) for r in want])
            self.assertEqual(shown["name"], "mailco.pl")
            refused(["domain", "show", "nosuch.pl"], 'unknown domain "nosuch.pl"')
            refused(["domain", "show", "nosuch.pl", "--json"], 'unknown domain "nosuch.pl"')
            for key, value, message in (
                    ("imaps_port", "0", 'imaps_port must be a port number from 1 to 65535, not "0"'),
                    ("submission_port", "65536", "submission_port must be a port number from 1 to"),
                    ("pop3_port", "x", 'pop3_port must be a port number from 1 to 65535, not "x"'),
                    ("web_host", "not a host", 'web_host: "not a host" is not a host name'),
                    ("imap_host", "bad_host.pl", 'imap_host: "bad_host.pl" is not a host name'),
                    ("client_services", "imaps smtp", 'client_services: "smtp" is not one of imaps'),
                    ("service_name", "<b>ISP</b>", "service_name must be 1 to 64 characters, without")):
                with self.subTest(key=key, value=value):
                    refused(["settings", "set", key, value], message)
        finally:
            for key, _, _, default in changes:
                ok(["settings", "set", key, default])
        self.assertIn("_imaps._tcp.mailco.pl. SRV 0 1 993 %s." % primary,
                      ok(["domain", "show", "mailco.pl"]))

    def test_json(self):
        self.ok(["customer", "add", "jsonco", "--display", 'Quote " and \\ backslash'])
        listed = json.loads(self.ok(["customer", "list", "--json"]))
        me = [c for c in listed if c["name"] == "jsonco"][0]
        self.assertEqual(me["display"], 'Quote " and \\ backslash')
        self.assertEqual(me["shell_accounts"], [])
        shown = json.loads(self.ok(["--json", "customer", "show", "jsonco"]))
        self.assertEqual(shown["name"], "jsonco")
        for args in (["domain", "list"], ["shell", "list"], ["alias", "list"], ["mailbox", "list"],
                     ["grant", "list"], ["usage", "list"], ["log"], ["db", "status"]):
            self.assertIsInstance(json.loads(self.ok(args + ["--json"])), (list, dict), args)
        self.refused(["customer", "show", "nosuch", "--json"], 'unknown customer "nosuch"')

    def test_config_errors(self):
        rc, out, err = self.ctl(["customer", "list"], conf="/nonexistent/vmail.conf")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/vmail.conf", err)
        bad = self.pg.config("bad.conf", dbname="no_such_db")
        rc, out, err = self.ctl(["customer", "list"], conf=bad)
        self.assertEqual(rc, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("cannot connect", err)
        empty = os.path.join(self.pg.dir, "empty.conf")
        with open(empty, "w") as f:
            f.write("listen_socketmap = x\n")
        rc, out, err = self.ctl(["customer", "list"], conf=empty)
        self.assertEqual(rc, 1)
        self.assertIn('no "database = <connection string>"', err)


class TestMigrate(Base):
    def test_migrate(self):
        self.pg.psql("CREATE DATABASE migtest", dbname="postgres")
        conf = self.pg.config("mig.conf", dbname="migtest")
        files = sorted(f for f in os.listdir(SCHEMA) if f.endswith(".sql") and f[0].isdigit())
        latest = int(files[-1].split("_")[0])

        rc, out, err = self.ctl(["customer", "list"], conf=conf)
        self.assertEqual(rc, 1)
        self.assertIn("db migrate", err)
        rc, out, err = self.ctl(["db", "status", "--json"], conf=conf)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["state"], "empty")

        rc, out, err = self.ctl(["db", "migrate"], conf=conf)
        self.assertEqual(rc, 0, err)
        for f in files:
            self.assertIn("applied " + f[:-4], out)
        rows = self.pg.psql("SELECT version, name FROM vmail_meta.migrations ORDER BY 1", dbname="migtest")
        self.assertEqual(len(rows.splitlines()), len(files))

        before = self.pg.psql("SELECT count(*) FROM vmail_meta.migrations", dbname="migtest")
        rc, out, err = self.ctl(["db", "migrate"], conf=conf)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "schema is up to date at version %d" % latest)
        self.assertEqual(before, self.pg.psql("SELECT count(*) FROM vmail_meta.migrations", dbname="migtest"))
        status = json.loads(self.ctl(["db", "status", "--json"], conf=conf)[1])
        self.assertEqual((status["state"], status["pending"], status["database_version"]),
                         ("current", 0, latest))

        # a database newer than the program is refused, by migrate and by everything else
        self.pg.psql("INSERT INTO vmail_meta.migrations (version, name) VALUES (999, '999_future')",
                     dbname="migtest")
        rc, out, err = self.ctl(["db", "migrate"], conf=conf)
        self.assertEqual(rc, 1)
        self.assertIn("version 999, newer than", err)
        self.assertEqual(len(err.strip().splitlines()), 1)
        rc, out, err = self.ctl(["customer", "list"], conf=conf)
        self.assertEqual(rc, 1)
        self.assertIn("newer than this vmailctl", err)
        self.pg.psql("DELETE FROM vmail_meta.migrations WHERE version = 999", dbname="migtest")

    def test_failed_migration_rolls_back(self):
        self.pg.psql("CREATE DATABASE migfail", dbname="postgres")
        conf = self.pg.config("migfail.conf", dbname="migfail")
        d = os.path.join(self.pg.dir, "badschema")
        os.mkdir(d)
        with open(os.path.join(d, "001_ok.sql"), "w") as f:
            f.write("CREATE TABLE public.t1 (a int);\n")
        with open(os.path.join(d, "002_bad.sql"), "w") as f:
            f.write("CREATE TABLE public.t2 (a int);\n\nSELEC 1;\n")
        with open(os.path.join(d, "README"), "w") as f:
            f.write("not a migration\n")
        argv = [VMAILCTL, "-c", conf, "--schema-dir", d, "db", "migrate"]
        p = subprocess.run(argv, capture_output=True, text=True, env=env())
        self.assertEqual(p.returncode, 1)
        self.assertIn("migration 002_bad failed at line 3", p.stderr)
        # one transaction: 001_ok is rolled back with it, and nothing claims it was applied
        self.assertNotIn("applied", p.stdout)
        self.assertEqual(self.pg.psql("SELECT to_regclass('public.t1') IS NULL AND to_regclass('public.t2') IS NULL"
                                      " AND to_regclass('vmail_meta.migrations') IS NULL", dbname="migfail"), "t")
        # a duplicate version is refused before anything runs
        with open(os.path.join(d, "002_other.sql"), "w") as f:
            f.write("SELECT 1;\n")
        p = subprocess.run(argv, capture_output=True, text=True, env=env())
        self.assertEqual(p.returncode, 1)
        self.assertIn("same version 2", p.stderr)

    def test_concurrent_migrators(self):
        self.pg.psql("CREATE DATABASE migrace", dbname="postgres")
        conf = self.pg.config("migrace.conf", dbname="migrace")
        argv = [VMAILCTL, "-c", conf, "--schema-dir", SCHEMA, "db", "migrate"]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
                 for _ in range(4)]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        self.assertTrue(all(r[2] == 0 for r in results), results)
        self.assertEqual(sum("schema upgraded" in r[0] for r in results), 1, results)


# A stand-in for doveadm: records its environment (as exec'd: /proc/PID/environ) and its
# arguments (NUL-separated, one invocation after another), then fails for a login holding
# "bad", printing a terminal escape; for "long", printing 999 bytes and a two-byte
# character across the 1000-byte cut; for "latin", printing Latin-1 (not UTF-8); and
# succeeds otherwise.  Only the last argument (the login) is matched.
FAKE_DOVEADM = r"""#!/bin/sh
tr '\000' '\n' < /proc/$$/environ > "$0.env"
printf '%s\000' "$@" >> "$0.args"
for last; do :; done
case "$last" in
*bad*) printf 'no such user\033[31m red\n'; exit 67;;
*long*) printf '%0999d' 0 | tr 0 a; printf '\305\274 and more\n'; exit 1;;
*latin*) printf 'utilisateur \351t\351 inconnu\n'; exit 1;;
esac
exit 0
"""

# A login an attacker could make vmaild list: a newline and a terminal escape.
ODD_LOGIN = "bad\nline\x1b[31m"
ODD_ESCAPED = "bad\\x0aline\\x1b[31m"


class TestUsageRecount(Base):
    """usage pending / recount: doveadm by its configured absolute path, in a fixed small
    environment; logins and doveadm's output printed escaped; a failed waitpid is a failure;
    SIGCHLD ignored by the caller does not hide doveadm's status."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = os.path.join(cls.pg.dir, "fake-doveadm")
        with open(cls.fake, "w") as f:
            f.write(FAKE_DOVEADM)
        os.chmod(cls.fake, 0o755)
        cls.dconf = os.path.join(cls.pg.dir, "dovecot.conf")
        cls.rconf = cls.pg.config("recount.conf", extra="doveadm_path = %s\ndoveadm_config = %s\n"
                                  % (cls.fake, cls.dconf))

    def setUp(self):
        self.pg.psql("DELETE FROM vmail.usage_recount")
        for suffix in (".env", ".args"):
            if os.path.exists(self.fake + suffix):
                os.unlink(self.fake + suffix)

    def add(self, *logins):
        for login in logins:
            self.pg.psql("INSERT INTO vmail.usage_recount (login, reason) VALUES (%s, "
                         "'commit-unavailable')" % ("E'%s'" % login.replace("\\", "\\\\")
                                                     .replace("\n", "\\n").replace("\x1b", "\\x1b")))

    def invocations(self):
        """doveadm's argument lists, one per run (each starts with -c)."""
        with open(self.fake + ".args") as f:
            args = f.read().split("\0")[:-1]
        runs = []
        for a in args:
            if a == "-c":
                runs.append([])
            runs[-1].append(a)
        return runs

    def recount(self, *args, **kw):
        e = env()
        # Neither root's PATH nor anything else of vmailctl's own environment reaches doveadm.
        e.update({"PATH": os.path.join(self.pg.dir, "nowhere") + ":" + e.get("PATH", ""),
                  "VMAIL_LEAK": "secret"})
        return self.ctl(["usage", "recount", *args], conf=self.rconf, env=e, **kw)

    def test_absolute_path_and_fixed_environment(self):
        self.add("jan@acme.lublin.pl")
        rc, out, err = self.recount("--all")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.invocations(),
                         [["-c", self.dconf, "quota", "recalc", "-u", "jan@acme.lublin.pl"]])
        with open(self.fake + ".env") as f:
            self.assertEqual(sorted(f.read().split()), ["LANG=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        self.assertEqual(self.pg.psql("SELECT count(*) FROM vmail.usage_recount"), "0")
        # --doveadm-config wins over the key
        self.add("ewa@acme.lublin.pl")
        os.unlink(self.fake + ".args")
        rc, out, err = self.recount("--all", "--doveadm-config", "/other.conf")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.invocations()[0][:2], ["-c", "/other.conf"])
        # a relative doveadm_path is refused (no PATH search as root), before any recount
        self.add("ewa@acme.lublin.pl")
        rel = self.pg.config("relative.conf", extra="doveadm_path = doveadm\n")
        rc, out, err = self.ctl(["usage", "recount", "ewa@acme.lublin.pl"], conf=rel)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("doveadm_path", err)
        self.assertEqual(self.pg.psql("SELECT attempts FROM vmail.usage_recount"), "0")

    def test_odd_login_printed_escaped(self):
        self.add(ODD_LOGIN, "jan@acme.lublin.pl")
        rc, out, err = self.ctl(["usage", "pending"], conf=self.rconf)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("\x1b", out)
        self.assertEqual(len(out.splitlines()), 3, out)  # header and two rows
        self.assertIn(ODD_ESCAPED, out)
        rc, out, err = self.recount("--dry-run", "--all")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("\x1b", out)
        self.assertIn("-u " + ODD_ESCAPED + "\n", out)
        rc, out, err = self.recount("--all")
        self.assertEqual(rc, 1, out + err)
        print("\n  " + err.strip())
        self.assertNotIn("\x1b", out + err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("vmailctl: " + ODD_ESCAPED + ": "), lines[0])
        self.assertIn("no such user\\x1b[31m red", lines[0])
        self.assertIn("recounted jan@acme.lublin.pl\n", out)
        # doveadm got the login as it is
        self.assertIn(["-c", self.dconf, "quota", "recalc", "-u", ODD_LOGIN], self.invocations())
        self.assertEqual(self.pg.psql("SELECT attempts FROM vmail.usage_recount"), "1")

    def test_sigchld_ignored_by_the_caller(self):
        # Started with SIGCHLD ignored (inherited across exec), the child used to be reaped
        # by the kernel and waitpid failed with ECHILD: every recount failed.  vmailctl
        # restores the default, so doveadm's real status counts, success and failure.
        self.add("jan@acme.lublin.pl", "bad@acme.lublin.pl")
        rc, out, err = self.recount("--all", preexec_fn=lambda: signal.signal(signal.SIGCHLD,
                                                                            signal.SIG_IGN))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("recounted jan@acme.lublin.pl\n", out)
        self.assertNotIn("waitpid", err)
        self.assertEqual(self.pg.psql("SELECT login || ' ' || attempts || ' ' || last_error"
                                      " FROM vmail.usage_recount"),
                         "bad@acme.lublin.pl 1 no such user\\x1b[31m red")

    def test_output_kept_as_utf8(self):
        # doveadm's output is cut at 1000 bytes on a character boundary, and what is not
        # UTF-8 is stored escaped: the failure is recorded, not refused by PostgreSQL.
        self.add("long@acme.lublin.pl", "latin@acme.lublin.pl")
        rc, out, err = self.recount("--all")
        self.assertEqual(rc, 1, out + err)
        rows = self.pg.psql("SELECT login || ' ' || attempts || ' ' || last_error"
                            " FROM vmail.usage_recount ORDER BY login").split("\n")
        self.assertEqual(rows[0], "latin@acme.lublin.pl 1 utilisateur \\xe9t\\xe9 inconnu")
        self.assertEqual(rows[1], "long@acme.lublin.pl 1 " + "a" * 999)

    def test_bidi_login_printed_escaped(self):
        # A right-to-left override could show "eve\u202elp.nilbul.emca@nimda" as an
        # innocent-looking login: bidi and invisible format characters are escaped.
        spoof = "eve\u202elp.nilbul.emca@nimda\u200b\ufeff\u2066"
        self.add(spoof)
        rc, out, err = self.ctl(["usage", "pending"], conf=self.rconf)
        self.assertEqual(rc, 0, err)
        for ch in ("\u202e", "\u200b", "\ufeff", "\u2066"):
            self.assertNotIn(ch, out)
        want = "eve\\xe2\\x80\\xaelp.nilbul.emca@nimda\\xe2\\x80\\x8b\\xef\\xbb\\xbf\\xe2\\x81\\xa6"
        self.assertIn(want, out)
        rc, out, err = self.recount("--dry-run", "--all")
        self.assertEqual(rc, 0, err)
        self.assertIn("-u " + want + "\n", out)
        # Other non-ASCII text stays as it is.
        self.pg.psql("DELETE FROM vmail.usage_recount")
        self.add("zażółć@acme.lublin.pl")
        rc, out, err = self.ctl(["usage", "pending"], conf=self.rconf)
        self.assertIn("zażółć@acme.lublin.pl", out)

if __name__ == "__main__":
    unittest.main()
