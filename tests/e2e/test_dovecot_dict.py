"""End-to-end: Dovecot 2.3 with vmaild's dict service for passdb, userdb and quota.

Run as root after building:  VMAIL_BUILD_DIR=build python3 -m unittest -v tests/e2e/test_dovecot_dict.py

Dovecot runs contrib/dovecot/2.3/90-vmaild-dict.conf and dovecot-dict-auth.conf.ext as
shipped (only the socket and file paths are replaced).  Shell accounts are throw-away
Unix users (Dovecot setuid()s to them), their homes in the world's directory.  Accounts:

  customer acme:  shell account A (disk 2 MiB, Argon2id), free mail account
                  biuro@acme.lublin.pl of A (1 MiB, Argon2id), free account
                  sus@acme.lublin.pl of A (suspended), late@acme.lublin.pl of A
                  (first used during the outage test)
  customer beta:  shell account B (disk 50 MiB, imported {SHA512-CRYPT})
"""

import os
import re
import smtplib
import socket
import subprocess
import time
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402

PRIMARY = "platon.man.lublin.pl"
PW_A = "Alpha-pass-1"
PW_B = "Beta-pass-2"
PW_BIURO = "Biuro-pass-3"
DISK_A = 2 * 1024 * 1024

SKIP = world.missing_prerequisites()
if not SKIP:
    for tool in ("dovecot", "doveadm", "useradd"):
        if not world.shutil.which(tool):
            SKIP = tool + " is not installed"


def contrib(name):
    with open(os.path.join(world.REPO, "contrib", "dovecot", "2.3", name)) as f:
        return f.read()


def message(subject, body_size=0):
    body = ("x" * 70 + "\r\n") * (body_size // 72 + 1) if body_size else "hello\r\n"
    return ("From: t@example.org\r\nTo: someone\r\nSubject: %s\r\n\r\n%s" % (subject, body))


class AccountsWorld:
    """The accounts of the module docstring in a fresh world, and client helpers.  A
    TestCase mixes it in and defines _services() (vmaild and Dovecot)."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World()
        try:
            cls._accounts()
            cls._services()
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    @classmethod
    def _accounts(cls):
        w = cls.w
        cls.pg = w.postgres()
        users = w.unix_users()
        cls.a, uid_a, gid_a, cls.home_a = users.add("a")
        cls.b, uid_b, gid_b, cls.home_b = users.add("b")
        cls.uid_a, cls.uid_b = uid_a, uid_b
        ctl = w.vmailctl
        cls.ctl = staticmethod(ctl)
        sha512 = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PW_B],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert sha512.startswith("{SHA512-CRYPT}$6$"), sha512
        ctl("customer", "add", "acme")
        ctl("customer", "add", "beta")
        ctl("domain", "add", "acme", "acme.lublin.pl")
        cls.pg.psql("SELECT vmail.domain_set_state('acme.lublin.pl', 'active')")
        ctl("--password-stdin", "shell", "add", "acme", cls.a, "--disk-limit", str(DISK_A),
            "--uid", str(uid_a), "--gid", str(gid_a), "--home", cls.home_a,
            "--mail-domain", "acme.lublin.pl", stdin=PW_A + "\n")
        ctl("shell", "add", "beta", cls.b, "--disk-limit", "50M", "--uid", str(uid_b),
            "--gid", str(gid_b), "--home", cls.home_b, "--password-hash", sha512)
        ctl("--password-stdin", "mailbox", "add", "biuro@acme.lublin.pl", "--owner", cls.a,
            "--quota", "1M", stdin=PW_BIURO + "\n")
        ctl("--password-stdin", "mailbox", "add", "sus@acme.lublin.pl", "--owner", cls.a,
            "--quota", "100K", stdin="Sus-pass-4\n")
        ctl("mailbox", "set", "sus@acme.lublin.pl", "--state", "suspended")
        # Used only during the outage: never looked up before, so no cache can answer it.
        ctl("--password-stdin", "mailbox", "add", "late@acme.lublin.pl", "--owner", cls.a,
            "--quota", "100K", stdin="Late-pass-5\n")
        hashes = cls.pg.psql("SELECT password FROM vmail.shell_account ORDER BY login")
        assert "{ARGON2ID}$argon2id$" in hashes, hashes

    @classmethod
    def _dict_services(cls, **settings):
        """vmaild with both dict listeners (plus settings) and Dovecot wired with the shipped
        2.3 files (only the socket and file paths replaced): cls.vd, cls.dc."""
        w = cls.w
        cls.auth_sock = w.path("dict-auth")
        cls.quota_sock = w.path("dict-quota")
        cls.vd = w.vmaild(cls.pg.dsn, "", dict_listen="unix:" + cls.auth_sock,
                          dict_quota_listen="unix:" + cls.quota_sock, socket_mode="0600",
                          request_timeout="2s", **settings)
        ext = w.path("dovecot-dict-auth.conf.ext")
        with open(ext, "w") as f:
            f.write(contrib("dovecot-dict-auth.conf.ext").replace(
                "/run/vmaild/dict-auth", cls.auth_sock))
        conf = contrib("90-vmaild-dict.conf")
        conf = conf.replace("/etc/dovecot/dovecot-dict-auth.conf.ext", ext)
        conf = conf.replace("/run/vmaild/dict-quota", cls.quota_sock)
        cls.dc = w.dovecot(conf)

    # -- helpers ------------------------------------------------------------------------

    def auth_ok(self, user, password):
        """doveadm auth test (no anvil penalty: failures would slow later requests)."""
        r = self.dc.doveadm("auth", "test", "-x", "service=imap", "-x", "no-penalty", user,
                            password)
        return r.returncode == 0 and "auth succeeded" in r.stdout + r.stderr

    def usage(self, login):
        """(bytes, messages) of a mailbox's counter in PostgreSQL, None if there is none."""
        out = self.pg.psql("SELECT u.bytes || ' ' || u.messages FROM vmail.mailbox_usage u "
                           "LEFT JOIN vmail.shell_account s ON s.id = u.shell_account_id "
                           "LEFT JOIN vmail.mail_account a ON a.id = u.mail_account_id "
                           "WHERE s.login = '%s' OR a.address = '%s'" % (login, login)).strip()
        return tuple(int(x) for x in out.split()) if out else None

    def wait_usage(self, login, pred, what):
        return world.wait_for(what, lambda: (lambda u: u if u and pred(u) else None)(
            self.usage(login)), timeout=15)

    def deliver(self, rcpt, msg):
        """LMTP delivery of msg to rcpt: (code, text) of the per-recipient DATA reply or
        of a refused RCPT."""
        with self.dc.lmtp() as l:
            l.ehlo("test.invalid")
            code, text = l.mail("t@example.org")
            self.assertEqual(code, 250, text)
            code, text = l.rcpt(rcpt)
            if code != 250:
                return code, text.decode(errors="replace")
            l.putcmd("data")
            code, text = l.getreply()
            self.assertEqual(code, 354, text)
            data = re.sub(r"(?m)^\.", "..", msg)
            l.send((data + ".\r\n").encode())
            code, text = l.getreply()
            return code, text.decode(errors="replace")

    def deliver_after_recovery(self, rcpt, subject):
        """LMTP delivery once PostgreSQL is back.  Dovecot's own clients (auth worker,
        LMTP's quota dict) reconnect on their own schedule: a 4xx for a moment after the
        restart is still a deferral, never a bounce."""
        last = []

        def delivered():
            code, text = self.deliver(rcpt, message(subject))
            last[:] = [code, text]
            self.assertTrue(code == 250 or 400 <= code < 500, "%d %s" % (code, text))
            return code == 250
        try:
            world.wait_for("delivery after restart", delivered, timeout=30, interval=1.0)
        except TimeoutError:
            self.fail("no delivery within 30 s of the restart; last LMTP answer: %s" % last)

    def imap_login(self, user, password):
        """The IMAP client after LOGIN, or the error text."""
        m = self.dc.imap()
        try:
            m.login(user, password)
            return m
        except m.error as e:
            m.shutdown()
            return str(e)


@unittest.skipIf(SKIP, SKIP)
class DovecotDictTest(AccountsWorld, unittest.TestCase):
    """Everything through a real Dovecot 2.3.19 and PostgreSQL, in one world."""

    @classmethod
    def _services(cls):
        w = cls.w
        cls._dict_services()
        # SMTP AUTH the way Postfix does it: Dovecot SASL on the auth-client socket.
        cls.pf = w.postfix(main_cf="smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n"
                           "smtpd_sasl_path = %s\n" % cls.dc.auth_client, chroot=False)

    def smtp_auth(self, user, password):
        """The SMTP reply code of AUTH PLAIN at the Postfix instance."""
        with self.pf.smtp() as s:
            s.ehlo()
            try:
                code, _ = s.login(user, password)
            except smtplib.SMTPAuthenticationError as e:
                code = e.smtp_code
            return code

    # -- tests --------------------------------------------------------------------------

    def test_1_auth(self):
        self.assertTrue(self.auth_ok(self.a, PW_A), self.dc.log()[-2000:])
        self.assertTrue(self.auth_ok("%s@%s" % (self.a, PRIMARY), PW_A))
        self.assertTrue(self.auth_ok("biuro@acme.lublin.pl", PW_BIURO))
        self.assertTrue(self.auth_ok(self.b, PW_B), "imported {SHA512-CRYPT}")
        self.assertFalse(self.auth_ok(self.a, "wrong"))
        self.assertFalse(self.auth_ok("biuro@acme.lublin.pl", PW_A))
        self.assertFalse(self.auth_ok("sus@acme.lublin.pl", "Sus-pass-4"))
        self.assertFalse(self.auth_ok("nobody-here@acme.lublin.pl", "x"))
        # jan@<primary> is the same user as jan: one name for quota counters.
        r = self.dc.doveadm("auth", "test", "%s@%s" % (self.a, PRIMARY), PW_A)
        self.assertIn("user=%s" % self.a, r.stdout)

    def test_2_userdb(self):
        f = self.dc.user_fields(self.a)
        self.assertIsInstance(f, dict, f)
        self.assertEqual(f.get("uid"), str(self.uid_a))
        self.assertEqual(f.get("home"), self.home_a)
        self.assertEqual(f.get("mail"), "maildir:~/Maildir")
        self.assertEqual(f.get("quota_rule"), "*:bytes=%d" % DISK_A)
        self.assertEqual(f.get("quota2_rule"), "*:bytes=%d" % DISK_A)
        f = self.dc.user_fields("%s@%s" % (self.a, PRIMARY))
        self.assertEqual(f.get("user"), self.a, f)
        f = self.dc.user_fields("biuro@acme.lublin.pl")
        self.assertEqual(f.get("home"), os.path.join(self.home_a, "mail/acme.lublin.pl/biuro.%s" % self.pg.psql(
            "SELECT id FROM vmail.mail_account WHERE address = 'biuro@acme.lublin.pl'").strip()))
        self.assertEqual(f.get("uid"), str(self.uid_a))
        self.assertEqual(f.get("quota_rule"), "*:bytes=1048576")
        self.assertEqual(f.get("quota2_rule"), "*:bytes=%d" % DISK_A)
        code, out = self.dc.user_fields("sus@acme.lublin.pl")
        self.assertNotEqual(code, 0)
        code, out = self.dc.user_fields("nobody-here@acme.lublin.pl")
        self.assertNotEqual(code, 0)
        r = self.dc.doveadm("user", "*")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = set(r.stdout.split())
        self.assertTrue({self.a, self.b, "biuro@acme.lublin.pl"} <= listed, r.stdout)

    def test_3_imap(self):
        m = self.imap_login(self.a, PW_A)
        self.assertNotIsInstance(m, str, m)
        typ, data = m.list()
        self.assertEqual(typ, "OK")
        self.assertTrue(any(b"INBOX" in d for d in data), data)
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"Account quota", b" ".join(x for x in data[0] if isinstance(x, bytes)))
        m.logout()
        err = self.imap_login(self.a, "wrong")
        self.assertIn("AUTHENTICATIONFAILED", err)
        err = self.imap_login("sus@acme.lublin.pl", "Sus-pass-4")
        self.assertIn("AUTHENTICATIONFAILED", err)
        m = self.imap_login("biuro@acme.lublin.pl", PW_BIURO)
        self.assertNotIsInstance(m, str, m)
        m.logout()

    def test_4_lmtp_usage_and_expunge(self):
        user = self.b
        code, text = self.deliver("%s@%s" % (user, PRIMARY), message("first"))
        self.assertEqual(code, 250, text)
        first = self.wait_usage(user, lambda u: u[1] >= 1, "a counter for " + user)
        msg = message("second", 3000)
        code, text = self.deliver("%s@%s" % (user, PRIMARY), msg)
        self.assertEqual(code, 250, text)
        after = self.wait_usage(user, lambda u: u[1] == first[1] + 1, "the second message")
        # The file Dovecot wrote: the message with LF line ends plus its trace headers.
        newest = max((os.path.join(d, n) for d in (os.path.join(self.home_b, "Maildir", x)
                                                    for x in ("new", "cur"))
                      for n in os.listdir(d)), key=os.path.getmtime)
        self.assertEqual(after[0] - first[0], os.path.getsize(newest))
        self.assertGreater(after[0] - first[0], len(msg.replace("\r\n", "\n")))
        self.added = after[0] - first[0]
        m = self.imap_login(user, PW_B)
        self.assertNotIsInstance(m, str, m)
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", "second")
        self.assertEqual(typ, "OK")
        m.store(data[0], "+FLAGS", "\\Deleted")
        m.expunge()
        m.logout()
        done = self.wait_usage(user, lambda u: u[1] == first[1], "expunge lowering usage")
        self.assertEqual(done[0], first[0])
        print("\n  LMTP 250; usage %s -> %s -> %s (bytes, messages)" % (first, after, done))

    def test_5_group_quota(self):
        # A's own mailbox and biuro are empty; fill A's files to 4 KiB below its disk limit.
        code, text = self.deliver("biuro@acme.lublin.pl", message("fits"))
        self.assertEqual(code, 250, text)
        self.wait_usage("biuro@acme.lublin.pl", lambda u: u[1] >= 1, "biuro's counter")
        total = int(self.pg.psql("SELECT total FROM vmail.quota_state('%s')" % self.a))
        self.ctl("usage", "set", self.a, str(DISK_A - total - 4096))
        code, text = self.deliver("biuro@acme.lublin.pl", message("too big", 8000))
        self.assertEqual(code, 452, text)
        self.assertIn("4.2.2", text)
        code, text = self.deliver("biuro@acme.lublin.pl", message("small"))
        self.assertEqual(code, 250, "a message that still fits: " + text)
        code, text = self.deliver("%s@%s" % (self.a, PRIMARY), message("too big", 8000))
        self.assertEqual(code, 452, text)
        code, text = self.deliver("%s@%s" % (self.b, PRIMARY), message("other customer", 8000))
        self.assertEqual(code, 250, text)
        # IMAP APPEND is refused by the same root.
        m = self.imap_login("biuro@acme.lublin.pl", PW_BIURO)
        typ, data = m.append("INBOX", None, None, message("append", 8000).encode())
        self.assertEqual(typ, "NO", data)
        m.logout()
        self.ctl("usage", "set", self.a, "0")
        print("\n  group quota: LMTP 452 4.2.2 for A and biuro, 250 for B")

    def test_6_suspended(self):
        code, text = self.deliver("sus@acme.lublin.pl", message("to a suspended account"))
        self.assertTrue(400 <= code < 500, "%d %s" % (code, text))
        ok = self.smtp_auth("biuro@acme.lublin.pl", PW_BIURO)
        self.assertEqual(ok, 235)
        refused = self.smtp_auth("sus@acme.lublin.pl", "Sus-pass-4")
        self.assertEqual(refused, 535)
        self.assertEqual(self.smtp_auth("biuro@acme.lublin.pl", "wrong"), 535)
        print("\n  suspended: LMTP %d %s; SMTP AUTH %d (active %d)" % (code, text, refused, ok))

    def test_7_peer_isolation(self):
        """A process running as A's uid: only A's users' counters; no password hashes."""
        script = r"""
import socket, sys
def talk(path, lines):
    s = socket.socket(socket.AF_UNIX); s.settimeout(5)
    try:
        s.connect(path)
    except PermissionError:
        return "connect: permission denied"

    s.sendall("".join(l + "\n" for l in lines).encode())
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            out += d
            if out.count(b"\n") >= sum(l[0] in "LC" for l in lines): break
    except socket.timeout:
        pass
    return out.decode()
q, a, own, other = sys.argv[1:5]
print(repr(talk(q, ["H3\t2\t0\t\tquota", "Lpriv/quota/storage\t" + other,
                    "B1\t" + other, "A1\tpriv/quota/storage\t1000000", "C1",
                    "Lpriv/quota/storage\t" + own, "Lpriv/quota/storage\tbiuro@acme.lublin.pl"])))
print(repr(talk(q, ["H3\t2\t0\t\tgroup", "Lpriv/quota/storage\t" + other])))
print(repr(talk(a, ["H3\t2\t0\t\tauth", "Lshared/passdb/" + other + "\tx"])))
print(repr(talk(q, ["H3\t2\t0\t\tauth", "Lshared/passdb/" + other + "\tx"])))
"""
        before = self.usage(self.b)
        r = subprocess.run(["python3", "-c", script, self.quota_sock, self.auth_sock, self.a,
                            self.b], user=self.uid_a, group=self.uid_a, capture_output=True,
                           text=True, timeout=60)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 4, r.stdout + r.stderr)
        quota = eval(lines[0])
        self.assertEqual(quota.split("\n")[:2], ["Fpermission denied", "F1\tpermission denied"])
        self.assertRegex(quota.split("\n")[2], r"^O\d+$")
        self.assertRegex(quota.split("\n")[3], r"^O\d+$")
        self.assertEqual(eval(lines[1]), "Fpermission denied\n")
        self.assertEqual(eval(lines[2]), "connect: permission denied")
        self.assertEqual(eval(lines[3]), "")
        self.assertEqual(self.usage(self.b), before)

    def test_8_outage(self):
        """PostgreSQL stopped: temporary failures only; then the same vmaild recovers."""
        # Keys never looked up before (SERVICE.md §5): vmaild's answer cache may serve
        # known ones, and Dovecot 2.3 delivers anyway when only the quota lookup fails.
        pid = self.vd.pid
        self.pg.stop()
        try:
            err = self.imap_login("late@acme.lublin.pl", "Late-pass-5")
            self.assertIn("UNAVAILABLE", err)
            self.assertFalse(self.auth_ok("late@acme.lublin.pl", "Late-pass-5"))
            code, text = self.deliver("late@acme.lublin.pl", message("during the outage"))
            self.assertTrue(400 <= code < 500, "%d %s" % (code, text))
            print("\n  outage: IMAP %s; LMTP %d %s" % (err, code, text))
        finally:
            self.pg.start()
        world.wait_for("auth after restart",
                       lambda: self.auth_ok("late@acme.lublin.pl", "Late-pass-5"),
                       timeout=30, interval=0.5)
        self.deliver_after_recovery("late@acme.lublin.pl", "after the outage")
        self.assertEqual(self.vd.pid, pid)
        self.assertIsNone(self.vd.proc.poll())

    def test_8_outage_of_a_known_mailbox_stores_nothing_unchecked(self):
        """PostgreSQL stopped while vmaild can still answer biuro's userdb from its cache
        (stale) and biuro has an IMAP session open: Dovecot 2.3 stores a message only
        after a quota lookup, and vmaild answers that lookup "full" when the database
        cannot, so LMTP defers (452 4.2.2) and APPEND is refused; nothing is stored
        uncounted.  Without that, Dovecot logs "copying mail anyway" and stores it."""
        box = "biuro@acme.lublin.pl"
        self.deliver_after_recovery(box, "before the outage")  # also fills the cache
        m = self.imap_login(box, PW_BIURO)
        self.assertNotIsInstance(m, str, m)
        try:
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK", data)
            before = int(data[0])
            usage = self.wait_usage(box, lambda u: u[1] == before, "biuro's counter")
            self.pg.stop()
            try:
                code, text = self.deliver(box, message("during the outage"))
                typ, data = m.append("INBOX", None, None, message("append, outage").encode())
            finally:
                self.pg.start()
            print("\n  outage, known mailbox: LMTP %d %s; APPEND %s %s" % (code, text, typ, data))
            self.assertTrue(400 <= code < 500, "LMTP %d %s" % (code, text))
            self.assertEqual(typ, "NO", data)
            typ, data = m.select("INBOX")
            self.assertEqual(int(data[0]), before, "messages stored during the outage")
        finally:
            m.logout()
        self.assertEqual(self.usage(box), usage)
        self.assertNotIn("copying mail anyway", self.dc.log())
        self.assertNotIn("saving mail anyway", self.dc.log())
        self.deliver_after_recovery(box, "after the outage")
        self.wait_usage(box, lambda u: u[1] == before + 1, "the delivery after the outage")

    def test_9_no_password_hash_in_the_log(self):
        """vmaild runs at log_level debug here; no passdb reply content reaches its log."""
        log = self.vd.log()
        self.assertIn("reply O (", log)      # replies are logged, by kind and size
        for mark in ("$argon2id$", "$6$", "{ARGON2ID}", "{SHA512-CRYPT}"):
            self.assertNotIn(mark, log)


if __name__ == "__main__":
    unittest.main()
