"""End-to-end: out-of-office replies and forwarding (issue 24) through real Postfix, Dovecot
LMTP with Pigeonhole Sieve and vmaild's dict, on Dovecot 2.3 (Debian 12) and 2.4 (Debian 13).

Dovecot runs the SQL path of the installed release plus contrib/dovecot/<release>/
92-vmaild-sieve.conf as shipped (paths and ports replaced): LMTP fetches each mailbox's script
from vmaild (dict name "sieve" on the quota socket) and sends replies and redirects to
Postfix over SMTP (submission_host).  Postfix routes the outside test domain to smtp-sink,
which keeps each message it receives as a file, so every reply and forwarded copy is seen.
The rules are set with vmailctl, as an administrator would.

Tests run in name order and share the world; each uses senders of its own.
"""
import datetime
import email
import glob
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402

PRIMARY = "platon.man.lublin.pl"
DOMAIN = "acme.lublin.pl"
OUTSIDE = "outside.test"

SKIP = world.missing_prerequisites()
if not SKIP:
    for tool in ("dovecot", "doveadm", "useradd", "postqueue", "smtp-sink", "sieve-test"):
        if not world.shutil.which(tool):
            SKIP = tool + " is not installed (dovecot-sieve, postfix)"


def message(subject, to, sender, headers=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@outside.test>\r\n%s\r\nhello\r\n"
            % (sender, to, subject, re.sub(r"\W", ".", subject), headers))


@unittest.skipIf(SKIP, SKIP)
class SieveDeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-sieve")
        try:
            cls._build()
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "sink_proc", None):
            cls.sink_proc.terminate()
            cls.sink_proc.wait(10)
        cls.w.close()

    @classmethod
    def _build(cls):
        w = cls.w
        cls.pg = w.postgres()
        users = w.unix_users()
        cls.jan, uid, gid, cls.home = users.add("s")
        cls.address = "%s@%s" % (cls.jan, PRIMARY)
        ctl = w.vmailctl
        ctl("customer", "add", "acme")
        ctl("domain", "add", "acme", DOMAIN)
        cls.pg.psql("SELECT vmail.domain_set_state('%s', 'active')" % DOMAIN)
        ctl("--password-stdin", "shell", "add", "acme", cls.jan, "--disk-limit", "50M",
            "--uid", str(uid), "--gid", str(gid), "--home", cls.home, "--mail-domain", DOMAIN,
            stdin="Sieve-pass-1\n")
        ctl("alias", "add", "info@" + DOMAIN, cls.jan, "--owner", cls.jan)

        # smtp-sink stands for the rest of the Internet: one file per message received.
        cls.sink_dir = w.path("sink")
        os.makedirs(cls.sink_dir)
        os.chmod(cls.sink_dir, 0o1777)
        cls.sink_port = world.free_port()
        cls.sink_proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d",
                                     os.path.join(cls.sink_dir, "%Y%m%d%H%M%S."),
                                     "127.0.0.1:%d" % cls.sink_port, "50"])

        cls.pf = w.postfix(start=False, chroot=False)
        quota_sock = w.path("dict-quota")
        cls.vd = w.vmaild(cls.pg.dsn, "unix:" + os.path.join(cls.pf.private, "vmaild"),
                          policy_listen="unix:" + os.path.join(cls.pf.private, "vmaild-policy"),
                          dict_quota_listen="unix:" + quota_sock,
                          socket_owner="postfix", socket_mode="0600", request_timeout="2s")
        release = "2.4" if (world.dovecot_version() or (0,)) >= (2, 4) else "2.3"
        sieve = world.contrib("dovecot", release, "92-vmaild-sieve.conf")
        sieve = world.contrib_replace(sieve, "/run/vmaild/dict-quota", quota_sock,
                                      release + "/92-vmaild-sieve.conf", 2)
        sieve = world.contrib_replace(sieve, "submission_host = 127.0.0.1:25",
                                      "submission_host = 127.0.0.1:%d" % cls.pf.port,
                                      release + "/92-vmaild-sieve.conf")
        # Dovecot's auth cache keeps the userdb answer, so that with PostgreSQL stopped only
        # the script's lookup fails (test_7).
        sieve += "\nauth_cache_size = 1M\nauth_cache_ttl = 1h\n"
        cls.dc = w.dovecot_sql(cls.pg.dsn, quota_sock, extra=sieve)

        main = world.contrib("postfix", "main.cf.vmaild")
        main, n = re.subn(r"(?m)^virtual_transport = .*$",
                          "virtual_transport = lmtp:unix:" + cls.dc.lmtp_path, main)
        assert n == 1, "contrib main.cf lost its virtual_transport line"
        transport = w.path("transport")
        with open(transport, "w") as f:
            f.write("%s smtp:[127.0.0.1]:%d\n" % (OUTSIDE, cls.sink_port))
        main += ("\ntransport_maps = texthash:%s\n"
                 "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
                 % transport)
        with open(os.path.join(cls.pf.conf, "main.cf"), "a") as f:
            f.write(main)
        cls.pf.start()

    # -- helpers --------------------------------------------------------------------------

    def ctl(self, *args, stdin=None):
        return self.w.vmailctl(*args, stdin=stdin)

    def vacation(self, *args, subject="Away", text="I am away until Monday.\n"):
        path = self.w.path("vacation.txt")
        with open(path, "w") as f:
            f.write(text)
        self.ctl("vacation", "set", self.jan, "--subject", subject, "--message-file", path, *args)

    def send(self, subject, sender, to=None, headers="", envelope=None):
        """One message into Postfix on its SMTP port; fails unless accepted."""
        to = to or self.address
        with self.pf.smtp() as s:
            self.assertEqual(s.ehlo()[0], 250)
            code, text = s.mail(sender if envelope is None else envelope)
            self.assertEqual(code, 250, text)
            code, text = s.rcpt(to)
            self.assertEqual(code, 250, text)
            code, text = s.data(message(subject, to, sender, headers).encode())
            self.assertEqual(code, 250, text)

    def maildir(self):
        """Subjects of the messages in the mailbox."""
        out = []
        for path in glob.glob(os.path.join(self.home, "Maildir", "new", "*")) + \
                glob.glob(os.path.join(self.home, "Maildir", "cur", "*")):
            with open(path, "rb") as f:
                out.append(email.message_from_bytes(f.read())["Subject"])
        return out

    def sink(self):
        """(envelope recipients, message) of everything the outside world received."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.sink_dir, "*"))):
            with open(path, "rb") as f:
                msg = email.message_from_bytes(f.read())
            out.append((" ".join(msg.get_all("X-Rcpt-Args", [])), msg))
        return out

    def sunk_to(self, rcpt):
        return [m for r, m in self.sink() if "<%s>" % rcpt in r]

    def flush_until(self, what, predicate, timeout=60):
        def flushed():
            subprocess.run(["postqueue", "-c", self.pf.conf, "-f"], capture_output=True)
            return predicate()
        try:
            world.wait_for(what, flushed, timeout=timeout, interval=0.5)
        except Exception:
            raise AssertionError("%s\n--- postfix\n%s\n--- dovecot\n%s" % (
                what, self.pf.log()[-4000:], self.dc.log()[-4000:]))

    def delivered(self, *subjects):
        self.flush_until("%s in the mailbox" % (subjects,),
                         lambda: all(s in self.maildir() for s in subjects))

    # -- tests ----------------------------------------------------------------------------

    def test_0_configuration_as_dovecot_reads_it(self):
        """doveconf -n: the shipped file's settings are the ones Dovecot runs with."""
        r = subprocess.run(["doveconf", "-c", self.dc.path, "-n"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        conf = r.stdout
        self.assertRegex(conf, r"submission_host = 127\.0\.0\.1:%d\n" % self.pf.port)
        self.assertIn("sieve_vacation_min_period = 1d", conf)
        if (world.dovecot_version() or (0,)) >= (2, 4):
            self.assertRegex(conf, r"sieve_script vmail \{[^}]*driver = dict[^}]*type = before")
            self.assertIn("name = sieve", conf)
            self.assertIn("sieve = yes", conf)
        else:
            self.assertRegex(conf, r"sieve_before = dict:proxy:\S+:sieve;name=vmail;bindir=~/\.sieve-bin")
            self.assertRegex(conf, r"protocol lmtp \{\n\s+mail_plugins = .*sieve")

    def test_1_one_reply_per_sender(self):
        self.vacation("--days", "7")
        a, b = "a1@" + OUTSIDE, "b1@" + OUTSIDE
        # One after the other: two deliveries to one mailbox at the same instant can both
        # answer (Pigeonhole's duplicate check and its record are not one step); :days is
        # about a sender writing again later.
        self.send("first from a", a)
        self.delivered("first from a")
        self.send("second from a", a)
        self.send("to the alias from b", b, to="info@" + DOMAIN)
        self.delivered("second from a", "to the alias from b")
        self.flush_until("replies to a and b", lambda: self.sunk_to(a) and self.sunk_to(b))
        time.sleep(1)
        self.flush_until("the queue empty", lambda: not self.queue())
        replies = self.sunk_to(a)
        self.assertEqual(len(replies), 1, [m["Subject"] for m in replies])
        self.assertEqual(replies[0]["Subject"], "Away")
        self.assertIn("I am away until Monday.", replies[0].get_payload(decode=True).decode())
        self.assertEqual(len(self.sunk_to(b)), 1)

    def queue(self):
        r = subprocess.run(["postqueue", "-c", self.pf.conf, "-j"], capture_output=True, text=True)
        return [line for line in r.stdout.splitlines() if line.strip()]

    def test_2_no_reply_to_bulk_lists_and_bounces(self):
        # each negative case beside a positive control in the same delivery run
        cases = [("bulk", "Precedence: bulk\r\n", None), ("list", "List-Id: <l.outside.test>\r\n", None),
                 ("bounce", "", "")]
        for name, headers, envelope in cases:
            self.send("negative " + name, name + "2@" + OUTSIDE, headers=headers, envelope=envelope)
        control = "control2@" + OUTSIDE
        self.send("positive control", control)
        self.delivered("negative bulk", "negative list", "negative bounce", "positive control")
        self.flush_until("the control's reply", lambda: self.sunk_to(control))
        self.flush_until("the queue empty", lambda: not self.queue())
        for name, _, _ in cases:
            with self.subTest(name):
                self.assertEqual(self.sunk_to(name + "2@" + OUTSIDE), [])

    def test_3_dates(self):
        today = datetime.date.today()
        day = datetime.timedelta(days=1)
        # each message delivered before the rule changes again: the rule at delivery counts
        self.vacation("--start", str(today + day))
        self.send("before the start", "early3@" + OUTSIDE)
        self.delivered("before the start")
        self.vacation("--start", str(today - 2 * day), "--end", str(today - day))
        self.send("after the end", "late3@" + OUTSIDE)
        self.delivered("after the end")
        self.vacation("--start", str(today), "--end", str(today + day), subject="Inside the window")
        control = "inside3@" + OUTSIDE
        self.send("inside the window", control)
        self.delivered("inside the window")
        self.flush_until("the reply inside the window", lambda: self.sunk_to(control))
        self.assertEqual(self.sunk_to(control)[0]["Subject"], "Inside the window")
        self.flush_until("the queue empty", lambda: not self.queue())
        self.assertEqual(self.sunk_to("early3@" + OUTSIDE), [])
        self.assertEqual(self.sunk_to("late3@" + OUTSIDE), [])

    def test_4_forward_with_a_copy(self):
        self.ctl("vacation", "off", self.jan)
        target = "copy4@" + OUTSIDE
        self.ctl("forward", "add", self.jan, target, "--keep")
        self.send("forwarded and kept", "s4@" + OUTSIDE)
        self.delivered("forwarded and kept")
        self.flush_until("the forwarded copy", lambda: self.sunk_to(target))
        self.assertEqual(self.sunk_to(target)[0]["Subject"], "forwarded and kept")
        self.assertEqual(self.sunk_to("s4@" + OUTSIDE), [])  # no out-of-office reply any more
        self.ctl("forward", "del", self.jan, target)

    def test_5_forward_without_a_copy(self):
        target = "far5@" + OUTSIDE
        self.ctl("forward", "add", self.jan, target, "--no-keep")
        self.send("forwarded only", "s5@" + OUTSIDE)
        self.flush_until("the forwarded message", lambda: self.sunk_to(target))
        self.flush_until("the queue empty", lambda: not self.queue())
        self.assertNotIn("forwarded only", self.maildir())

    def test_6_a_change_applies_to_the_next_delivery(self):
        self.ctl("forward", "del", self.jan, "far5@" + OUTSIDE)
        self.send("kept again", "s6@" + OUTSIDE)
        self.delivered("kept again")
        self.flush_until("the queue empty", lambda: not self.queue())
        self.assertEqual([m["Subject"] for m in self.sunk_to("far5@" + OUTSIDE)], ["forwarded only"])
        # loops and unknown hosted targets are refused when set, not at delivery
        for target, text in [("info@" + DOMAIN, "would loop"), ("nobody@" + DOMAIN, "unknown mailbox")]:
            with self.subTest(target):
                r = subprocess.run([os.path.join(world.BUILD, "vmailctl"), "-c", self.w.path("vmailctl.conf"),
                                    "forward", "add", self.jan, target], capture_output=True, text=True)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(text, r.stderr)

    def lmtp_deliver(self, subject, sender):
        """One message straight into Dovecot's LMTP (Postfix's policy would defer it at RCPT
        while PostgreSQL is away); the (code, text) of the recipient's DATA reply."""
        with self.dc.lmtp() as s:
            s.ehlo_or_helo_if_needed()
            self.assertEqual(s.mail(sender)[0], 250)
            code, text = s.rcpt(self.address)
            self.assertEqual(code, 250, text)
            code, text = s.data(message(subject, self.address, sender).encode())
            return code, text.decode(errors="replace")

    def test_7_no_delivery_without_its_forwarding(self):
        target = "kept7@" + OUTSIDE
        self.ctl("forward", "add", self.jan, target, "--no-keep")
        code, text = self.lmtp_deliver("warm the auth cache", "s7@" + OUTSIDE)  # userdb now cached
        self.assertEqual(code, 250, text)
        self.pg.stop()
        try:
            code, text = self.lmtp_deliver("while the database is away", "s7@" + OUTSIDE)
            self.assertTrue(400 <= code < 500, (code, text, self.dc.log()[-3000:]))
            self.assertNotIn("while the database is away", self.maildir())
        finally:
            self.pg.start()
        world.wait_for("the database back", lambda: self.lmtp_deliver(
            "after the database came back", "s7@" + OUTSIDE)[0] == 250, timeout=30, interval=1)
        self.flush_until("the forwarded message", lambda: any(
            m["Subject"] == "after the database came back" for m in self.sunk_to(target)))
        self.assertNotIn("after the database came back", self.maildir())


if __name__ == "__main__":
    unittest.main()
