"""End-to-end: the whole mail path, SMTP -> Postfix -> Dovecot LMTP -> Maildir, with vmaild
answering Postfix (socketmap, policy) and Dovecot: on Dovecot 2.3 the dict path (vmaild's
dict passdb/userdb/quota), on 2.4 (Debian 13), which has no dict passdb, userdb or quota, the
SQL path (contrib/dovecot/2.4 with quota_clone to vmaild).

Run as root after building:
    VMAIL_BUILD_DIR=build python3 -m unittest -v tests/e2e/test_mail_path.py

Everything is configured from contrib/ as shipped: Postfix main.cf.vmaild and the
submission service of master.cf.vmaild, Dovecot 2.3/90-vmaild-dict.conf and
dovecot-dict-auth.conf.ext (or the 2.4 files).  Only paths and ports are replaced, and smtpd/submission run
unchrooted (chroot column n) so that they reach Dovecot's auth socket in the world's
directory.  Submission keeps smtpd_tls_security_level = encrypt with a throw-away
self-signed certificate.

Accounts (customer acme; shell accounts are throw-away Unix users, named vmt<pid><x>):
  jan   shell account, disk limit 1 MiB, mail domain acme.lublin.pl
        aliases info@ and kontakt@ (-> jan), free mail account biuro@ (256 KiB)
  ewa   shell account, disk limit 50 MiB, alias ewa@acme.lublin.pl
  sus@acme.lublin.pl  free mail account of ewa, suspended
"""

import email
import glob
import os
import re
import smtplib
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402

PRIMARY = "platon.man.lublin.pl"
DOMAIN = "acme.lublin.pl"
DISK_JAN = 1024 * 1024
PW_JAN = "Jan-pass-1"
PW_EWA = "Ewa-pass-2"
PW_BIURO = "Biuro-pass-3"
PW_SUS = "Sus-pass-4"

SKIP = world.missing_prerequisites()
if not SKIP:
    for tool in ("dovecot", "doveadm", "useradd", "openssl", "postsuper", "postqueue"):
        if not world.shutil.which(tool):
            SKIP = tool + " is not installed"
    if not SKIP and not hasattr(world, "Dovecot"):
        SKIP = "tests/lib/world.py has no Dovecot class"


def message(subject, to, size=0, sender="tester@example.org"):
    body = ("x" * 70 + "\r\n") * (size // 72 + 1) if size else "hello\r\n"
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test.invalid>\r\n\r\n%s"
            % (sender, to, subject, subject.replace(" ", "."), body))


@unittest.skipIf(SKIP, SKIP)
class MailPathTest(unittest.TestCase):
    """One world for the whole class; tests run in name order and share its state."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-path")
        try:
            cls._build()
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    @classmethod
    def _build(cls):
        w = cls.w
        cls.pg = w.postgres()
        users = w.unix_users()
        cls.jan, uid_j, gid_j, cls.home_jan = users.add("j")
        cls.ewa, uid_e, gid_e, cls.home_ewa = users.add("e")
        ctl = w.vmailctl
        cls.ctl = staticmethod(ctl)
        ctl("customer", "add", "acme")
        ctl("domain", "add", "acme", DOMAIN)
        cls.pg.psql("SELECT vmail.domain_set_state('%s', 'active')" % DOMAIN)
        ctl("--password-stdin", "shell", "add", "acme", cls.jan, "--disk-limit", str(DISK_JAN),
            "--uid", str(uid_j), "--gid", str(gid_j), "--home", cls.home_jan,
            "--mail-domain", DOMAIN, stdin=PW_JAN + "\n")
        ctl("--password-stdin", "shell", "add", "acme", cls.ewa, "--disk-limit", "50M",
            "--uid", str(uid_e), "--gid", str(gid_e), "--home", cls.home_ewa,
            "--mail-domain", DOMAIN, stdin=PW_EWA + "\n")
        ctl("--password-stdin", "mailbox", "add", "biuro@" + DOMAIN, "--owner", cls.jan,
            "--quota", "256K", stdin=PW_BIURO + "\n")
        ctl("--password-stdin", "mailbox", "add", "sus@" + DOMAIN, "--owner", cls.ewa,
            "--quota", "100K", stdin=PW_SUS + "\n")
        ctl("mailbox", "set", "sus@" + DOMAIN, "--state", "suspended")
        cls.pg.psql(
            "SELECT vmail.alias_add('info@{d}', ARRAY['{j}@{p}'], true, '{j}');"
            "SELECT vmail.alias_add('kontakt@{d}', ARRAY['{j}@{p}'], true, '{j}');"
            "SELECT vmail.alias_add('ewa@{d}', ARRAY['{e}@{p}'], true, '{e}');"
            .format(d=DOMAIN, p=PRIMARY, j=cls.jan, e=cls.ewa))
        cls.jan_addresses = ["%s@%s" % (cls.jan, PRIMARY), "info@" + DOMAIN,
                             "kontakt@" + DOMAIN, "Info+tag@" + DOMAIN.upper(),
                             "biuro@" + DOMAIN]

        # Postfix first (not started): vmaild's Postfix sockets go in its private/.
        cls.pf = w.postfix(start=False, chroot=False)
        auth_sock, quota_sock = w.path("dict-auth"), w.path("dict-quota")
        cls.vd = w.vmaild(cls.pg.dsn, "unix:" + os.path.join(cls.pf.private, "vmaild"),
                          policy_listen="unix:" + os.path.join(cls.pf.private, "vmaild-policy"),
                          dict_listen="unix:" + auth_sock, dict_quota_listen="unix:" + quota_sock,
                          socket_owner="postfix", socket_mode="0600", request_timeout="2s")

        if (world.dovecot_version() or (0,)) >= (2, 4):
            cls.dc = w.dovecot_sql(cls.pg.dsn, quota_sock)
        else:
            ext = w.path("dovecot-dict-auth.conf.ext")
            with open(ext, "w") as f:
                f.write(world.contrib("dovecot", "2.3", "dovecot-dict-auth.conf.ext").replace(
                    "/run/vmaild/dict-auth", auth_sock))
            conf = world.contrib("dovecot", "2.3", "90-vmaild-dict.conf")
            conf = conf.replace("/etc/dovecot/dovecot-dict-auth.conf.ext", ext)
            conf = conf.replace("/run/vmaild/dict-quota", quota_sock)
            cls.dc = w.dovecot(conf)

        cls._configure_postfix()
        cls.pf.start()
        world.wait_for("submission on port %d" % cls.sub_port, cls._submission_up)

    @classmethod
    def _configure_postfix(cls):
        pf, w = cls.pf, cls.w
        key, cert = w.path("tls.key"), w.path("tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=mx.test.invalid", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        main = world.contrib("postfix", "main.cf.vmaild")
        main, n = re.subn(r"(?m)^virtual_transport = .*$",
                          "virtual_transport = lmtp:unix:" + cls.dc.lmtp_path, main)
        assert n == 1, "contrib main.cf lost its virtual_transport line"
        # Test 3 parks one message in the hold queue by its subject.
        checks = w.path("header_checks")
        with open(checks, "w") as f:
            f.write("/^Subject: queued before the outage/ HOLD\n")
        main += ("\nsmtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\n"
                 "smtpd_tls_security_level = may\nheader_checks = regexp:%s\n"
                 % (cert, key, checks))
        with open(os.path.join(pf.conf, "main.cf"), "a") as f:
            f.write(main)
        sub = world.contrib("postfix", "master.cf.vmaild")
        cls.sub_port = world.free_port()
        sub, n = re.subn(r"(?m)^submission\s+inet\s+n\s+-\s+y\s",
                         "127.0.0.1:%d inet n       -       n       " % cls.sub_port, sub)
        assert n == 1, "contrib master.cf lost its submission line"
        sub, n = re.subn(r"smtpd_sasl_path=\S+", "smtpd_sasl_path=" + cls.dc.auth_client, sub)
        assert n == 1
        with open(os.path.join(pf.conf, "master.cf"), "a") as f:
            f.write("\n" + sub)

    @classmethod
    def _submission_up(cls):
        import socket
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", cls.sub_port)) == 0

    # -- helpers ------------------------------------------------------------------------

    def rcpt(self, address):
        """(code, text) of RCPT TO:<address> on port 25, in a session of its own."""
        with self.pf.smtp() as s:
            self.assertEqual(s.ehlo()[0], 250)
            self.assertEqual(s.mail("tester@example.org")[0], 250)
            code, msg = s.rcpt(address)
            return code, msg.decode(errors="replace")

    def send(self, rcpt, msg, sender="tester@example.org"):
        """Whole SMTP transaction on port 25; (code, text) of the first refusal or of DATA."""
        with self.pf.smtp() as s:
            self.assertEqual(s.ehlo()[0], 250)
            code, text = s.mail(sender)
            if code == 250:
                code, text = s.rcpt(rcpt)
            if code == 250:
                code, text = s.data(msg.encode())
            return code, text.decode(errors="replace")

    def submission(self, login, password):
        """A submission session after STARTTLS and AUTH; or the (code, text) refusing AUTH."""
        s = smtplib.SMTP("127.0.0.1", self.sub_port, local_hostname="client.test.invalid",
                         timeout=60)
        self.addCleanup(s.close)
        s.ehlo()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        code, text = s.starttls(context=ctx)
        self.assertEqual(code, 220, text)
        s.ehlo()
        try:
            code, text = s.login(login, password)
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code, e.smtp_error.decode(errors="replace")
        self.assertEqual(code, 235, text)
        return s

    def may_send(self, session, sender):
        """(code, text) of MAIL FROM:<sender> and RCPT TO ewa in a submission session."""
        session.rset()
        code, text = session.mail(sender)
        if code == 250:
            code, text = session.rcpt("%s@%s" % (self.ewa, PRIMARY))
        return code, text.decode(errors="replace")

    def usage(self, login):
        """(bytes, messages) of a mailbox's counter, (0, 0) if there is none."""
        out = self.pg.psql("SELECT u.bytes || ' ' || u.messages FROM vmail.mailbox_usage u "
                           "LEFT JOIN vmail.shell_account s ON s.id = u.shell_account_id "
                           "LEFT JOIN vmail.mail_account a ON a.id = u.mail_account_id "
                           "WHERE s.login = '%s' OR a.address = '%s'" % (login, login)).strip()
        return tuple(int(x) for x in out.split()) if out else (0, 0)

    def wait_usage(self, login, pred, what):
        return world.wait_for(what, lambda: (lambda u: u if pred(u) else None)(
            self.usage(login)), timeout=30, interval=0.2)

    def maildir_subjects(self, home):
        """Subjects of the messages in a Maildir's new/ and cur/."""
        subjects = []
        for path in glob.glob(os.path.join(home, "Maildir", "new", "*")) + \
                glob.glob(os.path.join(home, "Maildir", "cur", "*")):
            with open(path, "rb") as f:
                subjects.append(email.message_from_bytes(f.read())["Subject"])
        return subjects

    def wait_delivered(self, home, subject):
        world.wait_for("'%s' in %s" % (subject, home),
                       lambda: subject in self.maildir_subjects(home), timeout=30,
                       interval=0.2)

    def flush_until_delivered(self, home, subjects, what):
        """Flush the queue until every subject is in home's Maildir.  One flush is not
        enough: an attempt that starts before vmaild or Dovecot has seen the recovery (the
        database back, a change's notification) defers once more, and Postfix would
        retry only after its minimal_backoff_time."""
        def flushed_and_delivered():
            subprocess.run(["postqueue", "-c", self.pf.conf, "-f"], check=True)
            got = self.maildir_subjects(home)
            return all(subject in got for subject in subjects)
        world.wait_for(what, flushed_and_delivered, timeout=60, interval=1.0)

    def queue_ids(self):
        r = subprocess.run(["postqueue", "-c", self.pf.conf, "-j"], capture_output=True,
                           text=True)
        return [line for line in r.stdout.splitlines() if line.strip()]

    def postsuper(self, *args):
        subprocess.run(["postsuper", "-c", self.pf.conf, *args], check=True,
                       capture_output=True)

    def imap_expunge_all(self, login, password):
        m = self.dc.imap()
        m.login(login, password)
        m.select("INBOX")
        typ, data = m.search(None, "ALL")
        for num in data[0].split():
            m.store(num, "+FLAGS", "\\Deleted")
        m.expunge()
        m.logout()

    def home_of(self, login):
        """The home Dovecot's userdb gives login (doveadm user)."""
        fields = self.dc.user_fields(login)
        self.assertIsInstance(fields, dict, fields)
        return fields["home"]

    def imap_subjects(self, login, password):
        """Subjects of the messages in login's INBOX, as IMAP shows them."""
        m = self.dc.imap()
        m.login(login, password)
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "ALL")
        subjects = []
        for num in data[0].split():
            typ, got = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(email.message_from_bytes(got[0][1])["Subject"])
        m.logout()
        return subjects

    def tell(self, text):
        print("\n  " + text, end="", flush=True)

    # -- tests --------------------------------------------------------------------------

    def test_1_delivery_to_alias_and_free_account(self):
        before = self.usage(self.jan)
        msg = message("to the alias", "info@" + DOMAIN, 20000)
        code, text = self.send("info@" + DOMAIN, msg)
        self.assertEqual(code, 250, text)
        self.wait_delivered(self.home_jan, "to the alias")
        after = self.wait_usage(self.jan, lambda u: u[1] == before[1] + 1, "jan's usage")
        self.assertGreaterEqual(after[0] - before[0], 20000)

        biuro_home = self.home_of("biuro@" + DOMAIN)
        self.assertTrue(biuro_home.startswith(os.path.join(self.home_jan, "mail", DOMAIN, "biuro.")),
                        biuro_home)
        code, text = self.send("biuro@" + DOMAIN, message("to biuro", "biuro@" + DOMAIN, 5000))
        self.assertEqual(code, 250, text)
        self.wait_delivered(biuro_home, "to biuro")
        b = self.wait_usage("biuro@" + DOMAIN, lambda u: u[1] == 1, "biuro's usage")
        self.assertGreaterEqual(b[0], 5000)
        # Mail lives under jan's uid (his disk quota counts the same bytes).
        st = os.stat(glob.glob(os.path.join(biuro_home, "Maildir", "new", "*"))[0])
        self.assertEqual(st.st_uid, world.pwd.getpwnam(self.jan).pw_uid)
        self.tell("delivered: jan %s -> %s, biuro %s (bytes, messages)" % (before, after, b))

    def test_2_full_account_refused_before_data_then_accepted_after_expunge(self):
        # jan's files fill what his mailboxes leave of his disk limit.
        mail = int(self.pg.psql("SELECT mailbox + free_mailboxes FROM vmail.quota_state('%s')"
                                % self.jan))
        self.assertGreater(mail, 20000)
        self.ctl("usage", "set", self.jan, str(DISK_JAN - mail))
        try:
            for address in self.jan_addresses:
                with self.subTest(address=address):
                    code, text = self.rcpt(address)
                    self.assertEqual(code, 452, "%s: %d %s" % (address, code, text))
                    self.assertRegex(text, r"^4\.2\.2 .*Mailbox \S+ is full")
            # Another shell account of the same customer still receives mail.
            for address in ("%s@%s" % (self.ewa, PRIMARY), "ewa@" + DOMAIN):
                code, text = self.rcpt(address)
                self.assertEqual(code, 250, "%s: %s" % (address, text))
            code, text = self.send("ewa@" + DOMAIN, message("ewa still", "ewa@" + DOMAIN))
            self.assertEqual(code, 250, text)
            self.wait_delivered(self.home_ewa, "ewa still")

            # jan deletes his mail over IMAP: Dovecot lowers the usage, RCPTs pass again.
            self.imap_expunge_all(self.jan, PW_JAN)
            self.wait_usage(self.jan, lambda u: u[1] == 0, "jan's usage after expunge")
            for address in self.jan_addresses:
                with self.subTest(address=address, after="expunge"):
                    code, text = self.rcpt(address)
                    self.assertEqual(code, 250, "%s: %d %s" % (address, code, text))
        finally:
            self.ctl("usage", "set", self.jan, "0")
        self.tell("full: 452 4.2.2 for %d addresses; 250 after the IMAP expunge"
                  % len(self.jan_addresses))

    def test_3_database_outage_defers_and_queued_mail_arrives_later(self):
        # A mailbox nobody asked about yet: vmaild's answer cache cannot know it, so its
        # delivery needs the database (Dovecot's userdb lookup at LMTP RCPT).
        self.ctl("--password-stdin", "mailbox", "add", "later@" + DOMAIN, "--owner", self.ewa,
                 "--quota", "100K", stdin="Later-pass-5\n")
        # From the database: asking Dovecot (doveadm user) would put the answer in vmaild's cache.
        later_home = self.pg.psql("SELECT home FROM vmail.mail_account WHERE address = 'later@%s'"
                                  % DOMAIN).strip()
        # A message accepted while PostgreSQL is up waits in the hold queue (header_checks).
        code, text = self.send("later@" + DOMAIN,
                               message("queued before the outage", "later@" + DOMAIN))
        self.assertEqual(code, 250, text)
        world.wait_for("the message on hold", lambda: len(self.queue_ids()) == 1)
        self.pg.stop()
        try:
            # New mail: a temporary refusal, never a bounce.
            for address in ("info+outage@" + DOMAIN, "never-seen@" + DOMAIN,
                            "%s@%s" % (self.ewa, PRIMARY)):
                code, text = self.rcpt(address)
                self.assertTrue(400 <= code < 500, "%s: %d %s" % (address, code, text))
            # The queued message is released and tried now: deferred, still queued.
            self.postsuper("-H", "ALL")   # to the deferred queue; flushing tries it now
            subprocess.run(["postqueue", "-c", self.pf.conf, "-f"], check=True)
            world.wait_for("a deferred delivery attempt",
                           lambda: "status=deferred" in self.pf.log(), timeout=30)
            self.assertNotIn("queued before the outage", self.maildir_subjects(later_home))
            self.assertEqual(len(self.queue_ids()), 1)
        finally:
            self.pg.start()
        world.wait_for("vmaild to reach PostgreSQL again",
                       lambda: self.rcpt("info+back@" + DOMAIN)[0] == 250, timeout=60,
                       interval=0.5)
        self.flush_until_delivered(later_home, ["queued before the outage"],
                                   "the queued mail delivered after the outage")
        self.assertNotIn("status=bounced", self.pf.log())
        deferred = [l for l in self.pf.log().splitlines() if "status=deferred" in l]
        self.tell("outage: RCPT 4xx; queued mail deferred (%s), delivered afterwards"
                  % deferred[0].split("status=deferred", 1)[1].strip()[:80])

    def test_4_submission_sender_ownership(self):
        ewa_rcpt = "%s@%s" % (self.ewa, PRIMARY)
        may_send = self.may_send

        s = self.submission(self.jan, PW_JAN)
        self.assertNotIsInstance(s, tuple, s)
        for sender in ("info@" + DOMAIN, "%s@%s" % (self.jan, PRIMARY), "kontakt@" + DOMAIN):
            with self.subTest(login=self.jan, sender=sender):
                code, text = may_send(s, sender)
                self.assertEqual(code, 250, "%s: %s" % (sender, text))
        for sender in ("ewa@" + DOMAIN, "%s@%s" % (self.ewa, PRIMARY), "nobody@" + DOMAIN,
                       "stranger@example.org"):
            with self.subTest(login=self.jan, sender=sender):
                code, text = may_send(s, sender)
                self.assertEqual(code, 553, "%s: %s" % (sender, text))
                self.assertIn("not owned by user %s" % self.jan, text)
        # A whole message as his alias reaches ewa.
        s.rset()
        msg = message("from jan's alias", ewa_rcpt, sender="info@" + DOMAIN)
        self.assertEqual(s.sendmail("info@" + DOMAIN, [ewa_rcpt], msg), {})
        self.wait_delivered(self.home_ewa, "from jan's alias")

        # jan@<primary> logs in as jan.
        s = self.submission("%s@%s" % (self.jan, PRIMARY), PW_JAN)
        self.assertNotIsInstance(s, tuple, s)
        self.assertEqual(may_send(s, "info@" + DOMAIN)[0], 250)

        # A free mail account may send as itself, not as its owner.
        s = self.submission("biuro@" + DOMAIN, PW_BIURO)
        self.assertNotIsInstance(s, tuple, s)
        self.assertEqual(may_send(s, "biuro@" + DOMAIN)[0], 250)
        self.assertEqual(may_send(s, "%s@%s" % (self.jan, PRIMARY))[0], 553)

        # Wrong passwords and suspended accounts cannot authenticate.
        for login, password in (("sus@" + DOMAIN, PW_SUS), (self.jan, "wrong")):
            with self.subTest(login=login):
                got = self.submission(login, password)
                self.assertIsInstance(got, tuple)
                self.assertEqual(got[0], 535, got)
        # Without AUTH nothing may be sent through submission.
        s = smtplib.SMTP("127.0.0.1", self.sub_port, local_hostname="client.test.invalid",
                         timeout=60)
        self.addCleanup(s.close)
        s.ehlo()
        code, _ = s.mail("info@" + DOMAIN)
        self.assertEqual(code, 530)   # TLS required first
        self.tell("submission: own addresses 250, others 553, suspended 535")

    def test_5_suspended_shell_account_mail_waits_for_the_suspension_to_end(self):
        # Mail already past smtpd's policy (here: local submission through pickup, which no
        # policy sees) for a suspended shell account, to its own address and through an alias:
        # Dovecot's userdb tempfails, LMTP answers 4xx, Postfix keeps it queued and never
        # bounces; once the suspension is lifted the next retry delivers it.
        own = "%s@%s" % (self.ewa, PRIMARY)
        mails = [(own, "held while suspended (own address)"),
                 ("ewa@" + DOMAIN, "held while suspended (alias)")]
        log_from = len(self.pf.log())
        self.ctl("shell", "set", self.ewa, "--state", "suspended")
        try:
            for rcpt, subject in mails:
                r = subprocess.run(["sendmail", "-C", self.pf.conf, "-f", "tester@example.org",
                                    rcpt], input=message(subject, rcpt).encode(),
                                   capture_output=True)
                self.assertEqual(r.returncode, 0, r.stderr)
            deferred = re.compile(r"to=<%s>.*status=deferred" % re.escape(own))
            lines = world.wait_for("both deliveries deferred", lambda: (lambda ls: ls if len(
                ls) >= 2 else None)([l for l in self.pf.log()[log_from:].splitlines()
                                     if deferred.search(l)]), timeout=30, interval=0.2)
            for _, subject in mails:
                self.assertNotIn(subject, self.maildir_subjects(self.home_ewa))
        finally:
            self.ctl("shell", "set", self.ewa, "--state", "active")

        # vmaild drops its cached "tempfail" when the change's notification arrives.
        self.flush_until_delivered(self.home_ewa, [subject for _, subject in mails],
                                   "the queued mail delivered after the suspension ended")
        self.assertNotIn("status=bounced", self.pf.log()[log_from:])
        self.tell("suspended shell account: %d deliveries deferred (%s), delivered after "
                  "the suspension ended" % (len(lines), lines[0].split("status=deferred", 1)[1]
                                            .strip()[:90]))

    def run_cron_purge(self, conf):
        """contrib/cron/vmaild-purge's command, as cron runs it (SHELL=... -c); what it logged."""
        text = world.contrib("cron", "vmaild-purge")
        shell = [l.split("=", 1)[1] for l in text.splitlines() if l.startswith("SHELL=")]
        cron = [l for l in text.splitlines() if l.startswith("17 ")]
        self.assertEqual((len(shell), len(cron)), (1, 1), text)
        user, command = cron[0].split("\t")[1:3]
        self.assertEqual(user, "root")
        self.assertIn("vmailctl -c /etc/vmaild/vmailctl.conf mailbox purge", command)
        bindir = self.w.path("cron-bin")
        os.makedirs(bindir, exist_ok=True)
        log = os.path.join(bindir, "logged")
        with open(os.path.join(bindir, "logger"), "w") as f:
            f.write("#!/bin/sh\ncat > '%s'\n" % log)
        os.chmod(os.path.join(bindir, "logger"), 0o755)
        if not os.path.exists(os.path.join(bindir, "vmailctl")):
            os.symlink(os.path.join(world.BUILD, "vmailctl"), os.path.join(bindir, "vmailctl"))
        env = dict(os.environ, VMAIL_PWHASH_COST="test", PATH=bindir + ":" + os.environ["PATH"])
        subprocess.run([shell[0], "-c", command.replace("/etc/vmaild/vmailctl.conf", conf)],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(log) as f:
            return f.read()

    def test_6_recreated_address_sees_only_its_own_mail(self):
        """Deleting x@ and creating x@ again (maybe for another person) hands over no old mail;
        `vmailctl mailbox purge` then removes the old home."""
        addr = "x@" + DOMAIN

        def create_and_deliver(password, subject):
            self.ctl("--password-stdin", "mailbox", "add", addr, "--owner", self.ewa, "--quota",
                     "100K", stdin=password + "\n")
            home = self.home_of(addr)
            code, text = self.send(addr, message(subject, addr))
            self.assertEqual(code, 250, text)
            self.wait_delivered(home, subject)
            return home

        old_home = create_and_deliver("Old-pass-6", "for the old holder")
        self.ctl("mailbox", "del", addr)
        new_home = create_and_deliver("New-pass-7", "for the new holder")
        self.assertEqual(self.imap_subjects(addr, "New-pass-7"), ["for the new holder"])
        self.assertNotEqual(old_home, new_home)
        self.assertTrue(os.path.isdir(old_home))

        self.assertIn(old_home, self.ctl("mailbox", "retired"))
        # The shipped cron job's command, run by the shell it names with this world's
        # administrator configuration for /etc/vmaild/vmailctl.conf (vmaild's own role may
        # not purge) and a logger that keeps what it is sent: this home is not old enough yet.
        self.assertIn("purged 0 mailboxes", self.run_cron_purge(self.w.path("vmailctl.conf")))
        self.assertTrue(os.path.isdir(old_home))
        # A failed run is the job's exit status, not logger's.
        with self.assertRaises(subprocess.CalledProcessError):
            self.run_cron_purge(self.w.path("no-such.conf"))
        # One purge at a time: another one holding the lock makes this one do nothing.
        holder = subprocess.Popen(["psql", "-X", "-q", "-At", self.pg.dsn], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            holder.stdin.write("SELECT pg_advisory_lock(hashtext('vmailctl mailbox purge'));\n")
            holder.stdin.flush()
            self.assertEqual(holder.stdout.readline().strip(), "")
            with self.assertRaisesRegex(RuntimeError, "another .mailbox purge. is running"):
                self.ctl("mailbox", "purge", "--older-than", "0")
            self.assertTrue(os.path.isdir(old_home))
        finally:
            holder.stdin.close()
            holder.wait()
        # Everything deleted until now: a dry run first.
        dry = self.ctl("mailbox", "purge", "--older-than", "0", "--dry-run")
        self.assertIn("would remove %s (%s): " % (old_home, addr), dry)
        self.assertTrue(os.path.isdir(old_home))
        out = self.ctl("mailbox", "purge", "--older-than", "0")
        self.assertIn("removed %s (%s): " % (old_home, addr), out)
        self.assertFalse(os.path.exists(old_home))
        self.assertEqual(self.maildir_subjects(new_home), ["for the new holder"])
        self.assertNotIn(addr, self.ctl("mailbox", "retired"))
        self.tell("re-created %s: IMAP shows only the new message; purge: %s"
                  % (addr, out.strip().splitlines()[-1]))

    def test_7_domain_alias(self):
        """Issue 20: every address of acme.lublin.pl answers at an alias domain, through
        Postfix, Dovecot and submission; the alias domain's own address wins; a change at
        the target is seen at the alias domain at once, through vmaild's warm cache."""
        alias_dom = "acme-firma.pl"
        ewa_primary, jan_primary = "%s@%s" % (self.ewa, PRIMARY), "%s@%s" % (self.jan, PRIMARY)
        self.ctl("domain", "add", "acme", alias_dom)
        self.pg.psql("SELECT vmail.domain_set_state('%s', 'active')" % alias_dom)
        self.ctl("domain", "alias", alias_dom, DOMAIN)
        # kontakt@acme.lublin.pl is jan's; the alias domain's own kontakt@ is ewa's and wins
        self.pg.psql("SELECT vmail.alias_add('kontakt@%s', ARRAY['%s'], false, NULL)" % (alias_dom, ewa_primary))

        for rcpt, subject in (("ewa@" + alias_dom, "mirrored alias"),
                              ("Ewa+x@" + alias_dom.upper(), "mirrored with extension"),
                              ("kontakt@" + alias_dom, "the alias domain's own address")):
            with self.subTest(rcpt=rcpt):
                code, text = self.send(rcpt, message(subject, rcpt))
                self.assertEqual(code, 250, text)
                self.wait_delivered(self.home_ewa, subject)
        self.assertNotIn("the alias domain's own address", self.maildir_subjects(self.home_jan))
        code, text = self.send("nobody@" + alias_dom, message("unknown", "nobody@" + alias_dom))
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.1.1"), text)
        may_send = self.may_send

        # reject_sender_login_mismatch: a mirrored sender belongs to its target's owner
        s = self.submission(self.ewa, PW_EWA)
        self.assertNotIsInstance(s, tuple, s)
        self.assertEqual(may_send(s, "ewa@" + alias_dom)[0], 250)
        self.assertEqual(may_send(s, "kontakt@" + alias_dom)[0], 250)
        code, text = may_send(s, "info@" + alias_dom)
        self.assertEqual(code, 553, text)
        s = self.submission(self.jan, PW_JAN)
        self.assertNotIsInstance(s, tuple, s)
        self.assertEqual(may_send(s, "info@" + alias_dom)[0], 250)
        code, text = may_send(s, "ewa@" + alias_dom)
        self.assertEqual(code, 553, text)
        self.assertIn("not owned by user %s" % self.jan, text)

        # Warm cache: team@ at the alias domain is cached as jan's (for 300 s); moving
        # team@acme.lublin.pl to ewa must reach the alias domain's entry at once.
        def alias_of(key):
            return self.pf.postmap_q(key, "socketmap:unix:private/vmaild:alias")[:2]
        self.pg.psql("SELECT vmail.alias_add('team@%s', ARRAY['%s'], false, NULL)" % (DOMAIN, jan_primary))
        self.assertEqual(alias_of("team@" + alias_dom), (0, jan_primary))
        self.assertEqual(alias_of("team@" + alias_dom), (0, jan_primary))
        self.pg.psql("SELECT vmail.alias_set('team@%s', ARRAY['%s'])" % (DOMAIN, ewa_primary))
        world.wait_for("team@%s follows its target" % alias_dom,
                       lambda: alias_of("team@" + alias_dom) == (0, ewa_primary), timeout=3)
        self.tell("domain alias %s: mirrored and own addresses delivered, senders by owner, "
                  "cache follows the target" % alias_dom)


if __name__ == "__main__":
    unittest.main(verbosity=2)
