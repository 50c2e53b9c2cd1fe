"""End-to-end: a mail program set up by vmail-panel's automatic configuration logs in (issue 22).

The accounts of test_dovecot_dict.py, Dovecot on the SQL path (contrib files of the installed
release, 2.3 or 2.4) with TLS on a self-signed test certificate: STARTTLS on the IMAP port and
implicit TLS on an imaps port.  The settings name the IMAP host mail.isp.test and both ports;
vmail-panel answers Thunderbird's autoconfig, Outlook's autodiscover and, after a login,
serves the Apple profile.  For every IMAP server in every answer the test connects to exactly
that host (mapped to 127.0.0.1, as a hosts file would), port and security (the certificate
checked against the host name), and logs in with exactly that user name: for the shell
account and for a mail account.

Run as root after building:  VMAIL_BUILD_DIR=build python3 -m unittest -v tests/e2e/test_mail_programs.py
"""

import contextlib
import imaplib
import os
import plistlib
import socket
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402
from panelworld import PANEL, Browser  # noqa: E402
from test_dovecot_dict import AccountsWorld, PRIMARY, PW_A, PW_BIURO, SKIP  # noqa: E402

V24 = (world.dovecot_version() or (0,)) >= (2, 4)
HOST = "mail.isp.test"
MS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
AUTODISCOVER_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>%s</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""


@contextlib.contextmanager
def hosts_file(names):
    """Resolve each of names to 127.0.0.1 inside the block, as an /etc/hosts line would."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        return real("127.0.0.1" if host in names else host, *args, **kw)
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real


class Panel:
    """vmail-panel on a loopback port in front of dsn (what Browser needs: port, unix_path)."""

    def __init__(self, w, dsn):
        self.port = world.free_port()
        self.unix_path = None
        conf = w.path("vmail-panel.conf")
        with open(conf, "w") as f:
            f.write("database = %s\npanel_database = %s\npanel_listen = inet:127.0.0.1:%d\n"
                    "socketmap_listen = unix:/nonexistent/socketmap\ncookie_secure = no\n"
                    "login_failure_delay = 300ms\n" % (dsn, dsn, self.port))
        self.log_path = w.path("panel.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, VMAIL_PWHASH_COST="test", VMAILD_TEST_ALLOW_ROOT="1")
        self.proc = subprocess.Popen([PANEL, "-c", conf], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError("vmail-panel exited: " + self.text())
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        world.wait_for("vmail-panel on port %d" % self.port, listening)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@unittest.skipIf(SKIP, SKIP)
class MailProgramsTest(AccountsWorld, unittest.TestCase):

    @classmethod
    def _services(cls):
        w = cls.w
        cls.cert, key = w.path("tls.pem"), w.path("tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=" + HOST, "-addext", "subjectAltName=DNS:" + HOST,
                        "-keyout", key, "-out", cls.cert], check=True, capture_output=True)
        os.chmod(key, 0o644)  # read by Dovecot's unprivileged login processes in this test only
        cls.imaps_port = world.free_port()
        tls = ("ssl = yes\nssl_server_cert_file = %s\nssl_server_key_file = %s\n" % (cls.cert, key)
               if V24 else "ssl = yes\nssl_cert = <%s\nssl_key = <%s\n" % (cls.cert, key))
        tls += ("service imap-login {\n  inet_listener imaps {\n    port = %d\n    ssl = yes\n  }\n}\n"
                % cls.imaps_port)
        cls.quota_sock = w.path("dict-quota")
        cls.vd = w.vmaild(cls.pg.dsn, "", dict_quota_listen="unix:" + cls.quota_sock,
                          request_timeout="2s")
        cls.dc = w.dovecot_sql(cls.pg.dsn, cls.quota_sock, extra=tls)
        for key_, value in (("imap_host", HOST), ("submission_host", HOST),
                            ("imaps_port", cls.imaps_port), ("imap_port", cls.dc.imap_port),
                            ("service_name", "Platon test")):
            cls.ctl("settings", "set", key_, str(value))
        cls.panel = Panel(w, cls.pg.dsn)
        w._stack.callback(cls.panel.stop)

    # -- the answers --------------------------------------------------------------------

    def http(self, method, path, body=None):
        b = Browser(self.panel)
        r = b.request(method, path, raw_body=body,
                      headers={"Content-Type": "text/xml"} if body else None)
        self.assertEqual(r.status, 200, "%s %s: %s\n%s" % (method, path, r.body, self.panel.text()[-2000:]))
        return r

    def thunderbird(self, address):
        r = self.http("GET", "/mail/config-v1.1.xml?" + urllib.parse.urlencode({"emailaddress": address}))
        out = []
        for s in ET.fromstring(r.body).iter("incomingServer"):
            if s.get("type") == "imap":
                out.append((s.findtext("hostname"), int(s.findtext("port")),
                            {"SSL": "ssl", "STARTTLS": "starttls"}[s.findtext("socketType")],
                            s.findtext("username")))
        return out

    def outlook(self, address):
        r = self.http("POST", "/autodiscover/autodiscover.xml", (AUTODISCOVER_REQUEST % address).encode())
        out = []
        for p in ET.fromstring(r.body).iter(MS + "Protocol"):
            if p.findtext(MS + "Type") == "IMAP":
                starttls = p.findtext(MS + "Encryption") == "TLS"
                self.assertEqual(p.findtext(MS + "SSL"), "on")
                out.append((p.findtext(MS + "Server"), int(p.findtext(MS + "Port")),
                            "starttls" if starttls else "ssl", p.findtext(MS + "LoginName")))
        return out

    def apple(self, login, password, address):
        b = Browser(self.panel)
        r = b.login(login, password)
        self.assertEqual(r.status, 303, r.body)
        r = b.get("/mail-programs/apple?" + urllib.parse.urlencode({"address": address}))
        self.assertEqual(r.status, 200, r.body)
        p = plistlib.loads(r.body.encode())["PayloadContent"][0]
        return [(p["IncomingMailServerHostName"], p["IncomingMailServerPortNumber"],
                 "ssl" if p["IncomingMailServerPortNumber"] == self.imaps_port else "starttls",
                 p["IncomingMailServerUsername"])]

    # -- logging in with an answer ------------------------------------------------------

    def login_with(self, server, password):
        """LOGIN at exactly host, port and security with exactly the user name; the folder
        list, or the error."""
        host, port, security, user = server
        ctx = ssl.create_default_context(cafile=self.cert)  # checks the name against host
        with hosts_file({HOST}):
            if security == "ssl":
                m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=30)
            else:
                m = imaplib.IMAP4(host, port, timeout=30)
                m.starttls(ssl_context=ctx)
        try:
            m.login(user, password)
            typ, data = m.list()
            return typ, data
        finally:
            m.logout()

    def check_logins(self, answers, password):
        seen = set()
        for name, servers in answers:
            self.assertEqual({s[2] for s in servers} & {"ssl", "starttls"}, {s[2] for s in servers})
            for server in servers:
                self.assertEqual(server[0], HOST, (name, server))
                typ, data = self.login_with(server, password)
                self.assertEqual(typ, "OK", (name, server, data, self.dc.log()[-2000:]))
                seen.add((name, server[2]))
        return seen

    def test_mail_account(self):
        addr = "Biuro@Acme.Lublin.PL"
        answers = [("thunderbird", self.thunderbird(addr)), ("outlook", self.outlook(addr))]
        for name, servers in answers:
            # implicit TLS first (RFC 8314), the address as asked, lower-cased
            self.assertEqual([s[1:] for s in servers],
                             [(self.imaps_port, "ssl", "biuro@acme.lublin.pl"),
                              (self.dc.imap_port, "starttls", "biuro@acme.lublin.pl")], name)
        answers.append(("apple", self.apple(self.a, PW_A, "biuro@acme.lublin.pl")))
        self.assertEqual(answers[-1][1], [(HOST, self.imaps_port, "ssl", "biuro@acme.lublin.pl")])
        seen = self.check_logins(answers, PW_BIURO)
        print("\n  mail account: %d logins (%s)" % (len(seen), ", ".join(sorted("%s/%s" % s for s in seen))),
              end="")

    def test_shell_account(self):
        addr = "%s@%s" % (self.a, PRIMARY)
        answers = [("thunderbird", self.thunderbird(addr)), ("outlook", self.outlook(addr))]
        for name, servers in answers:
            self.assertEqual({s[3] for s in servers}, {addr}, name)  # Dovecot takes login@primary
        apple = self.apple(self.a, PW_A, addr)
        self.assertEqual(apple, [(HOST, self.imaps_port, "ssl", self.a)])  # the Unix login
        answers.append(("apple", apple))
        seen = self.check_logins(answers, PW_A)
        print("\n  shell account: %d logins" % len(seen), end="")

    def test_wrong_password_still_refused(self):
        server = self.thunderbird("biuro@acme.lublin.pl")[0]
        with self.assertRaises(imaplib.IMAP4.error):
            self.login_with(server, "wrong")


if __name__ == "__main__":
    unittest.main()
