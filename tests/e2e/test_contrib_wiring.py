"""End-to-end: the shipped wiring, used as shipped.  Postfix and Dovecot run the contrib/
files of the installed releases, and one vmaild runs the vmaild.conf blocks of
contrib/postfix/README.md and contrib/dovecot/README.md; only paths are replaced
(/var/spool/postfix by the instance's queue directory, /run/vmaild and /etc/dovecot by
the world's directory), each replacement failing loudly when it finds nothing.

Postfix runs chrooted as Debian ships master.cf, with main.cf.vmaild appended unchanged:
its socketmap tables, its policy service and its LMTP transport all resolve
private/... in the queue directory.  Dovecot 2.3 runs the dict path
(90-vmaild-dict.conf, dovecot-dict-auth.conf.ext), 2.4 the SQL path (auth-vmaild-sql.conf.ext,
90-vmaild-quota.conf); both add 91-vmaild-lmtp.conf, the LMTP socket Postfix delivers to.
A message goes SMTP -> Postfix -> LMTP -> Dovecot -> Maildir and is read over IMAP.

Run as root after building:
    VMAIL_BUILD_DIR=build python3 tests/pyrun.py tests/e2e/test_contrib_wiring.py
"""

import email
import glob
import os
import pwd
import re
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402

PRIMARY = "platon.man.lublin.pl"
DOMAIN = "wiring.lublin.pl"
PASSWORD = "Jan-wiring-1"
SPOOL = "/var/spool/postfix"

SKIP = world.missing_prerequisites()
if not SKIP:
    for tool in ("dovecot", "doveadm", "useradd", "postqueue"):
        if not world.shutil.which(tool):
            SKIP = tool + " is not installed"


def vmaild_settings(spool, run):
    """Both READMEs' vmaild.conf blocks as one dict, paths replaced.  A key both set
    (e.g. socket_owner postfix for Postfix, root for Dovecot) is a wiring one vmaild
    cannot serve: it fails here."""
    settings = {}
    for readme, old, new in ((("postfix", "README.md"), SPOOL, spool),
                             (("dovecot", "README.md"), "/run/vmaild", run)):
        for key, value in world.contrib_vmaild_conf(*readme):
            if key.endswith("_listen"):
                value = world.contrib_replace(value, old, new, "/".join(readme) + " " + key)
            if key in settings and settings[key] != value:
                raise AssertionError("the READMEs disagree on %s: %r and %r: one vmaild cannot "
                                     "serve Postfix and Dovecot" % (key, settings[key], value))
            settings[key] = value
    return settings


def lmtp_conf(version, spool):
    text = world.contrib("dovecot", version, "91-vmaild-lmtp.conf")
    return world.contrib_replace(text, SPOOL + "/private/dovecot-lmtp",
                                 spool + "/private/dovecot-lmtp", version + "/91-vmaild-lmtp.conf")


@unittest.skipIf(SKIP, SKIP)
class ContribWiringTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-wiring")
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
        cls.jan, uid, gid, cls.home = w.unix_users().add("w")
        w.vmailctl("customer", "add", "wiring")
        w.vmailctl("domain", "add", "wiring", DOMAIN)
        cls.pg.psql("SELECT vmail.domain_set_state('%s', 'active')" % DOMAIN)
        w.vmailctl("--password-stdin", "shell", "add", "wiring", cls.jan, "--disk-limit", "50M",
                   "--uid", str(uid), "--gid", str(gid), "--home", cls.home,
                   "--mail-domain", DOMAIN, stdin=PASSWORD + "\n")
        cls.pg.psql("SELECT vmail.alias_add('post@%s', ARRAY['%s@%s'], true, '%s')"
                    % (DOMAIN, cls.jan, PRIMARY, cls.jan))

        # main.cf.vmaild unchanged; the queue directory is the instance's own.
        cls.pf = w.postfix(world.contrib("postfix", "main.cf.vmaild"), start=False, chroot=True)
        run = w.path("run-vmaild")
        os.makedirs(run, mode=0o755)
        cls.settings = vmaild_settings(cls.pf.spool, run)
        s = dict(cls.settings)
        cls.vd = w.vmaild(cls.pg.dsn, s.pop("socketmap_listen"), request_timeout="2s", **s)

        quota = world.contrib_replace(cls.settings["dict_quota_listen"], "unix:", "", "quota")
        if (world.dovecot_version() or (0,)) >= (2, 4):
            cls.dc = w.dovecot_sql(cls.pg.dsn, quota, extra=lmtp_conf("2.4", cls.pf.spool))
        else:
            auth = world.contrib_replace(cls.settings["dict_listen"], "unix:", "", "auth")
            ext = w.path("dovecot-dict-auth.conf.ext")
            with open(ext, "w") as f:
                f.write(world.contrib_replace(
                    world.contrib("dovecot", "2.3", "dovecot-dict-auth.conf.ext"),
                    "/run/vmaild/dict-auth", auth, "2.3/dovecot-dict-auth.conf.ext"))
            conf = world.contrib("dovecot", "2.3", "90-vmaild-dict.conf")
            conf = world.contrib_replace(conf, "/etc/dovecot/dovecot-dict-auth.conf.ext", ext,
                                         "2.3/90-vmaild-dict.conf", 2)
            conf = world.contrib_replace(conf, "/run/vmaild/dict-quota", quota,
                                         "2.3/90-vmaild-dict.conf", 3)
            cls.dc = w.dovecot(conf + lmtp_conf("2.3", cls.pf.spool))
        cls.pf.start()

    # -- helpers ------------------------------------------------------------------------

    def subjects(self):
        found = []
        for path in glob.glob(os.path.join(self.home, "Maildir", "new", "*")) + \
                glob.glob(os.path.join(self.home, "Maildir", "cur", "*")):
            with open(path, "rb") as f:
                found.append(email.message_from_bytes(f.read())["Subject"])
        return found

    def queue(self):
        return subprocess.run(["postqueue", "-c", self.pf.conf, "-p"], capture_output=True,
                              text=True).stdout

    def assert_socket(self, path, owner, mode):
        st = os.lstat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode), path)
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, oct(stat.S_IMODE(st.st_mode))),
                         (owner, oct(mode)), path)

    # -- tests --------------------------------------------------------------------------

    def test_sockets_as_the_readmes_say(self):
        """Postfix's sockets postfix 0600, Dovecot's auth dict root 0600, the quota dict
        0666, all from one vmaild; Dovecot's LMTP socket in the queue directory postfix 0600."""
        private = self.pf.private
        self.assert_socket(os.path.join(private, "vmaild"), "postfix", 0o600)
        self.assert_socket(os.path.join(private, "vmaild-policy"), "postfix", 0o600)
        self.assert_socket(os.path.join(private, "dovecot-lmtp"), "postfix", 0o600)
        dict_auth = self.settings["dict_listen"][len("unix:"):]
        dict_quota = self.settings["dict_quota_listen"][len("unix:"):]
        self.assert_socket(dict_auth, "root", 0o600)
        self.assert_socket(dict_quota, "nobody", 0o666)  # vmaild's user: no owner key set

    def test_mail_from_smtp_to_imap(self):
        """RCPT and DATA to an alias of a hosted mailbox, delivered by Postfix over the
        contrib LMTP socket into the Maildir, and seen over IMAP after login."""
        subject = "through the shipped wiring"
        msg = ("From: tester@example.org\r\nTo: post@%s\r\nSubject: %s\r\n"
               "Message-ID: <wiring@test.invalid>\r\n\r\nhello\r\n" % (DOMAIN, subject))
        with self.pf.smtp() as s:
            self.assertEqual(s.ehlo()[0], 250)
            self.assertEqual(s.mail("tester@example.org")[0], 250)
            code, text = s.rcpt("post@" + DOMAIN)
            self.assertEqual(code, 250, text)
            code, text = s.data(msg.encode())
            self.assertEqual(code, 250, text)
        try:
            world.wait_for("delivery to " + self.home, lambda: subject in self.subjects(),
                           timeout=60, interval=0.2)
        except Exception:
            deferred = re.findall(r"(?m)^.*status=deferred.*$", self.pf.log())
            self.fail("not delivered; queue:\n%s\ndeferred:\n%s" % (self.queue(),
                                                                    "\n".join(deferred[-3:])))
        m = self.dc.imap()
        try:
            m.login(self.jan, PASSWORD)
            self.assertEqual(m.select("INBOX")[0], "OK")
            typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data[0].split()), 1, data)
        finally:
            m.logout()

    def test_unknown_owner_names_its_key(self):
        """A per-service owner or group that does not exist stops vmaild -t, naming the key."""
        for key, kind in (("policy_socket_owner", "user"), ("dict_socket_group", "group")):
            conf = self.w.path("bad-%s.conf" % key)
            with open(conf, "w") as f:
                f.write("database = %s\nsocketmap_listen = unix:%s\n%s = no-such-%s-x\n"
                        % (self.pg.dsn, self.w.path("unused"), key, kind))
            r = subprocess.run([os.path.join(world.BUILD, "vmaild"), "-t", "-c", conf],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn('%s: unknown %s "no-such-%s-x"' % (key, kind, kind), r.stderr)

    def test_clients_idle_less_than_vmaild(self):
        """Every client idle time in contrib is below vmaild's idle_timeout as it runs: a
        client that idles as long as the server may send on a connection being closed."""
        out = subprocess.run([os.path.join(world.BUILD, "vmaild"), "-t", "-c",
                              self.vd.config_path], capture_output=True, text=True)
        m = re.search(r"(?m)^idle_timeout = (\d+)s$", out.stdout + out.stderr)
        self.assertIsNotNone(m, out.stdout + out.stderr)
        server_ms = int(m.group(1)) * 1000
        clients = {}
        ext = world.contrib("dovecot", "2.3", "dovecot-dict-auth.conf.ext")
        for found in re.findall(r"idle_msecs=(\d+)", ext):
            clients["dovecot-dict-auth.conf.ext idle_msecs"] = int(found)
        self.assertIn("dovecot-dict-auth.conf.ext idle_msecs", clients)
        main = world.contrib("postfix", "main.cf.vmaild")
        m = re.search(r"(?m)^smtpd_policy_service_max_idle = (\d+)s$", main)
        self.assertIsNotNone(m, "main.cf.vmaild sets no smtpd_policy_service_max_idle")
        clients["smtpd_policy_service_max_idle"] = int(m.group(1)) * 1000
        # socketmap connections close after ipc_idle (main.cf.vmaild leaves the default)
        r = subprocess.run(["postconf", "-c", self.pf.conf, "-h", "ipc_idle"],
                           capture_output=True, text=True, check=True)
        clients["ipc_idle"] = int(re.match(r"(\d+)s?$", r.stdout.strip()).group(1)) * 1000
        for name, ms in clients.items():
            self.assertLess(ms, server_ms, "%s (%d ms) must stay below idle_timeout (%d ms)"
                            % (name, ms, server_ms))


if __name__ == "__main__":
    unittest.main()
