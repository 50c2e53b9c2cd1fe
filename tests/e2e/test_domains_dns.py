#!/usr/bin/env python3
"""test_domains_dns: the domain life cycle (issue 9) against a real DNS server — dnsmasq on
loopback serving a test zone, named to vmailctl by a resolv.conf of its own.

Local domains wait in the queue until "domain registered"; external domains become active
when "domain verify" finds their token in TXT at _vmail-verify.<domain>; a wrong or missing
token leaves them pending with what DNS holds; a DNS server that is down or silent is a
temporary error (exit 75) that changes nothing; "domain check" compares MX hosts with the
mail_hosts setting and warns without refusing.  Every step is in the audit log.

"domain check" then looks up the records mail programs find the servers by (issue 22: RFC 6186
SRV, the autodiscover SRV, the autoconfig CNAME) and says of each: ok, missing or different,
the last two as warnings; a DNS failure there is exit 75 too (a small server of the test's
own answers MX and fails the rest).

Environment: VMAIL_BUILD_DIR (default <repo>/build) holds the vmailctl binary.  dnsmasq
(Debian package dnsmasq-base) and PostgreSQL must be installed: a missing one fails the test.
Run: python3 -m unittest -v tests/e2e/test_domains_dns.py
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402
import world  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VMAIL_BUILD_DIR", os.path.join(REPO, "build"))
VMAILCTL = os.path.join(BUILD, "vmailctl")
PROBE = os.path.join(BUILD, "dnscheck_probe")  # tests/unit/dnscheck_probe.c
SCHEMA = os.path.join(REPO, "schema")
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DB = "vmail_domains_dns"
EX_TEMPFAIL = 75
MAIL_HOSTS = "mx1.example.net mx2.example.net"
# where mail programs go (settings imap_host, submission_host, web_host): the hosts the SRV and
# CNAME records of ok.test below point at
CLIENT_HOSTS = (("imap_host", "mail.isp.test"), ("submission_host", "smtp2.isp.test"),
                ("web_host", "mail.isp.test"))


def free_udp_port():
    """A loopback UDP port nobody uses right now, outside the range DNS clients' source ports
    come from (world.free_port)."""
    return world.free_port(socket.SOCK_DGRAM)


def dns_ready(port):
    """True once the server answers anything on port (a query for the root's SOA)."""
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        s.sendto(q, ("127.0.0.1", port))
        return s.recv(512)[:2] == b"\x12\x34"
    except OSError:
        return False
    finally:
        s.close()


class DnsServer:
    """dnsmasq on 127.0.0.1:port, authoritative-ish for *.test (unknown names: NXDOMAIN)."""

    def __init__(self, records):
        self.proc = None
        for _ in range(5):  # the port may be taken between choosing and binding it
            self.port = free_udp_port()
            argv = [DNSMASQ, "--port=%d" % self.port, "--listen-address=127.0.0.1", "--bind-interfaces",
                    "--no-resolv", "--no-hosts", "--no-daemon", "--user=root", "--pid-file=",
                    "--local=/test/", "--log-facility=-"] + records
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.time() + 5
            while time.time() < deadline and self.proc.poll() is None and not dns_ready(self.port):
                time.sleep(0.05)
            if self.proc.poll() is None and dns_ready(self.port):
                return
            self.stop()
        raise RuntimeError("dnsmasq did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()


class MxOnlyDns:
    """A DNS server on 127.0.0.1 that answers every MX question with mx1.example.net and every
    other question with SERVFAIL: the MX part of "domain check" passes, the rest fails."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)  # a closed socket does not wake a blocked recvfrom
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def reply(query):
        end = 12
        while query[end]:
            end += 1 + query[end]
        question = query[12:end + 5]
        qtype = struct.unpack("!H", question[-4:-2])[0]
        if qtype != 15:
            return query[:2] + struct.pack("!HHHHH", 0x8182, 1, 0, 0, 0) + question
        exchange = b"".join(bytes([len(x)]) + x for x in b"mx1.example.net".split(b".")) + b"\0"
        rdata = struct.pack("!H", 10) + exchange
        answer = struct.pack("!HHHIH", 0xC00C, 15, 1, 60, len(rdata)) + rdata
        return query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer

    def serve(self):
        while not self.stopped.is_set():
            try:
                query, peer = self.sock.recvfrom(4096)
                self.sock.sendto(self.reply(query), peer)
            except (OSError, IndexError, struct.error):
                continue  # a timeout, or a query too short to answer

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


class DomainsDns(unittest.TestCase):
    dir = None
    dns = None

    @classmethod
    def setUpClass(cls):
        # CI counts a skipped test as a failure: say plainly what is missing
        assert os.access(VMAILCTL, os.X_OK), "no vmailctl at %s (set VMAIL_BUILD_DIR)" % VMAILCTL
        assert os.access(DNSMASQ, os.X_OK), "dnsmasq is not installed (apt-get install dnsmasq-base)"
        assert os.access(PROBE, os.X_OK), "no dnscheck_probe at %s (build the tests)" % PROBE
        cls.dir = tempfile.mkdtemp(prefix="vmail-dns-", dir="/tmp")
        cls.resolv = os.path.join(cls.dir, "resolv.conf")
        cls.conf = cls.config("vmail.conf", "dns_resolv_conf = %s\ndns_timeout = 2s\n" % cls.resolv)
        cls.new_db(DB, cls.conf)
        run = cls.run_ctl
        for cmd in [["customer", "add", "acme"], ["customer", "add", "beta"],
                    ["settings", "set", "mail_hosts", MAIL_HOSTS]] + \
                [["settings", "set", key, host] for key, host in CLIENT_HOSTS]:
            rc, out, err = run(cmd)
            assert rc == 0, err
        # external: ok (right token), wrong (another token), missing (nothing), down, slow,
        # lost (verified, then the record goes); local: shop.lublin.pl
        for dom in ("ok.test", "wrong.test", "missing.test", "down.test", "slow.test", "all-a.test",
                    "all-b.test", "nomx.test", "elsewhere.test"):
            rc, out, err = run(["domain", "add", "acme", dom])
            assert rc == 0, err
        tok = dict(row.split("|") for row in pgsql.query(
            DB, "SELECT name, verify_token FROM vmail.domain WHERE kind = 'external'").splitlines())
        cls.tokens = tok
        records = [
            "--txt-record=_vmail-verify.ok.test,%s" % tok["ok.test"],
            "--txt-record=_vmail-verify.wrong.test,vmail-verify=00000000000000000000000000000000",
            "--txt-record=_vmail-verify.wrong.test,v=spf1 -all",
            "--txt-record=_vmail-verify.all-a.test,%s" % tok["all-a.test"],
            "--mx-host=ok.test,mx1.example.net,10",
            "--mx-host=ok.test,MX2.example.net.,20",
            "--mx-host=elsewhere.test,mx1.example.net,10",
            "--mx-host=elsewhere.test,mail.other-isp.test,5",
            # client setup (RFC 6186 SRV, autoconfig CNAME), read through dnscheck_probe
            "--srv-host=_imaps._tcp.ok.test,mail.isp.test,993,0,1",
            "--srv-host=_submission._tcp.ok.test,mail.isp.test,587,10,5",
            "--srv-host=_submission._tcp.ok.test,smtp2.isp.test,587,20,5",
            "--srv-host=_pop3._tcp.ok.test",  # no target: the service is not offered
            "--host-record=mail.isp.test,192.0.2.7,2001:db8::7",
            "--cname=autoconfig.ok.test,mail.isp.test",
            # the rest of ok.test's client setup records (all in place with CLIENT_HOSTS)
            "--srv-host=_imap._tcp.ok.test,mail.isp.test,143,0,1",
            "--srv-host=_submissions._tcp.ok.test,smtp2.isp.test,465,0,1",
            "--srv-host=_autodiscover._tcp.ok.test,mail.isp.test,443,0,1",
            # elsewhere.test's: a wrong target, a wrong port, one right (in other letters, other
            # priority), POP3's the wrong way round, a CNAME elsewhere, and _submissions and
            # _autodiscover missing
            "--srv-host=_imaps._tcp.elsewhere.test,mail.other-isp.test,993,0,1",
            "--srv-host=_imap._tcp.elsewhere.test,mail.isp.test,1143,0,1",
            "--srv-host=_submission._tcp.elsewhere.test,SMTP2.isp.test.,587,5,0",
            "--srv-host=_pop3._tcp.elsewhere.test,mail.isp.test,110,0,1",
            "--srv-host=_pop3s._tcp.elsewhere.test",  # "not offered" (dnsmasq: 0 0 1 .)
            "--host-record=www.other-isp.test,192.0.2.9",  # dnsmasq serves CNAMEs to names it knows
            "--cname=autoconfig.elsewhere.test,www.other-isp.test",
        ]
        cls.dns = DnsServer(records)
        with open(cls.resolv, "w") as f:
            f.write("# the test zone's server\nnameserver 127.0.0.1:%d\n" % cls.dns.port)

    @classmethod
    def tearDownClass(cls):
        if cls.dns:
            cls.dns.stop()
        if cls.dir:
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def new_db(cls, name, conf):
        """An empty database, migrated by vmailctl itself (which keeps its own bookkeeping)."""
        pgsql.server_up()
        pgsql.query("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        pgsql.query("postgres", "CREATE DATABASE %s" % name)
        rc, out, err = cls.run_ctl(["db", "migrate"], conf)
        assert rc == 0, err

    @classmethod
    def config(cls, name, dns_lines):
        path = os.path.join(cls.dir, name)
        with open(path, "w") as f:
            # vmaild's keys share the file; the dns_* keys are vmailctl's
            f.write("database = %s\nsocketmap_listen = unix:/nonexistent\n%s" % (pgsql.dsn(DB), dns_lines))
        return path

    @classmethod
    def run_ctl(cls, args, conf=None, timeout=60):
        env = dict(os.environ)
        env.pop("VMAIL_CONFIG", None)
        env["VMAIL_PWHASH_COST"] = "test"
        p = subprocess.run([VMAILCTL, "-c", conf or cls.conf, "--schema-dir", SCHEMA] + list(args),
                           capture_output=True, text=True, env=env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, args, conf=None):
        rc, out, err = self.run_ctl(args, conf)
        self.assertEqual(rc, 0, "vmailctl %s: rc=%d stderr=%s" % (" ".join(args), rc, err))
        return out, err

    def state(self, dom):
        return pgsql.query(DB, "SELECT state FROM vmail.domain WHERE name = '%s'" % dom)

    def events(self, dom, action):
        rows = pgsql.query(DB, "SELECT actor || '|' || after::text FROM vmail.audit_log"
                               " WHERE object_kind = 'domain' AND object = '%s' AND action = '%s'"
                               " ORDER BY id" % (dom, action))
        out = []
        for row in rows.splitlines():
            actor, after = row.split("|", 1)
            self.assertTrue(actor.startswith("admin:"), actor)
            out.append(json.loads(after))
        return out

    # ---- local domains: the registration queue ----

    def test_local_registration_queue(self):
        self.ok(["settings", "set", "local_suffixes", "lublin.pl, krasnik.pl example.pl"])
        out, _ = self.ok(["settings", "show", "local_suffixes"])
        self.assertIn("lublin.pl krasnik.pl example.pl", out)
        out, _ = self.ok(["domain", "add", "beta", "sklep.example.pl"])
        self.assertIn("local, pending_registration", out)
        out, _ = self.ok(["domain", "list", "--pending", "--json"])
        queue = {d["name"]: d for d in json.loads(out)}
        self.assertIn("vmailctl domain registered sklep.example.pl", queue["sklep.example.pl"]["todo"])
        self.assertIn('_vmail-verify.missing.test. IN TXT "%s"' % self.tokens["missing.test"],
                      queue["missing.test"]["todo"])
        self.assertIn("vmailctl domain verify missing.test", queue["missing.test"]["todo"])
        out, _ = self.ok(["domain", "list", "--pending"])
        self.assertIn("sklep.example.pl", out)

        # an external domain is not registered, it is proven; nothing changes
        rc, _, err = self.run_ctl(["domain", "registered", "missing.test"])
        self.assertEqual(rc, 1)
        self.assertIn("domain verify", err)
        self.assertEqual(self.state("missing.test"), "pending_proof")
        rc, _, err = self.run_ctl(["domain", "verify", "sklep.example.pl"])
        self.assertEqual(rc, 1)
        self.assertIn("vmailctl domain registered sklep.example.pl", err)

        out, _ = self.ok(["domain", "registered", "sklep.example.pl"])
        self.assertIn("now active", out)
        self.assertEqual(self.state("sklep.example.pl"), "active")
        rc, _, err = self.run_ctl(["domain", "registered", "sklep.example.pl"])
        self.assertEqual(rc, 1)
        self.assertIn("is active, not awaiting registration", err)
        out, _ = self.ok(["domain", "list", "--pending"])
        self.assertNotIn("sklep.example.pl", out)
        self.assertEqual(len(self.events("sklep.example.pl", "register")), 1)
        setting = pgsql.query(DB, "SELECT after->>'local_suffixes' FROM vmail.audit_log"
                                  " WHERE object_kind = 'settings' ORDER BY id DESC LIMIT 1")
        self.assertIn("example.pl", setting)

    # ---- external domains: ownership proof ----

    def test_show_prints_the_record(self):
        out, _ = self.ok(["domain", "show", "missing.test"])
        self.assertIn('_vmail-verify.missing.test. IN TXT "%s"' % self.tokens["missing.test"], out)
        self.assertRegex(self.tokens["missing.test"], r"^vmail-verify=[0-9a-f]{32}$")

    def test_right_token_activates(self):
        # R8 keeps addresses out until then
        rc, _, err = self.run_ctl(["alias", "add", "info@ok.test", "x@elsewhere.example", "--admin"])
        self.assertEqual(rc, 1)
        self.assertIn("R8", err)
        out, err = self.ok(["domain", "verify", "ok.test"])
        self.assertIn("domain ok.test verified", out)
        self.assertIn(self.tokens["ok.test"], out)
        self.assertEqual(self.state("ok.test"), "active")
        self.ok(["alias", "add", "info@ok.test", "x@elsewhere.example", "--admin"])
        # re-verification of an active domain reports and changes nothing
        out, _ = self.ok(["domain", "verify", "ok.test"])
        self.assertIn("in place", out)
        ev = self.events("ok.test", "verify")
        self.assertEqual([e["outcome"] for e in ev], ["match", "match"])
        self.assertEqual(ev[0]["state"], "active")
        self.assertEqual(ev[0]["record"], "_vmail-verify.ok.test")

    def test_wrong_token_stays_pending(self):
        rc, out, err = self.run_ctl(["domain", "verify", "wrong.test"])
        self.assertEqual(rc, 1, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("stays pending_proof", err)
        self.assertIn("found TXT records at _vmail-verify.wrong.test", err)
        self.assertIn('"vmail-verify=00000000000000000000000000000000"', err)
        self.assertIn('"v=spf1 -all"', err)
        self.assertIn(self.tokens["wrong.test"], err)  # what to publish instead
        self.assertEqual(self.state("wrong.test"), "pending_proof")
        ev = self.events("wrong.test", "verify")
        self.assertEqual(ev[-1]["outcome"], "mismatch")
        self.assertIn("v=spf1 -all", ev[-1]["found"])

    def test_missing_token_stays_pending(self):
        rc, out, err = self.run_ctl(["domain", "verify", "missing.test"])
        self.assertEqual(rc, 1, err)
        self.assertIn("no TXT record at _vmail-verify.missing.test", err)
        self.assertIn("stays pending_proof", err)
        self.assertEqual(self.state("missing.test"), "pending_proof")
        self.assertEqual(self.events("missing.test", "verify")[-1]["outcome"], "missing")

    def test_dns_server_down_is_temporary(self):
        port = free_udp_port()  # nothing listens there
        conf = self.config("down.conf", "dns_nameserver = 127.0.0.1:%d\n" % port)
        before = pgsql.query(DB, "SELECT row_to_json(d) FROM vmail.domain d WHERE name = 'down.test'")
        rc, out, err = self.run_ctl(["domain", "verify", "down.test"], conf)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("temporary DNS error", err)
        self.assertIn("127.0.0.1:%d" % port, err)
        self.assertIn("state unchanged (pending_proof)", err)
        after = pgsql.query(DB, "SELECT row_to_json(d) FROM vmail.domain d WHERE name = 'down.test'")
        self.assertEqual(before, after)
        ev = self.events("down.test", "verify")
        self.assertEqual(ev[-1]["outcome"], "tempfail")
        self.assertIn("refused", ev[-1]["error"])
        rc, out, err = self.run_ctl(["domain", "check", "ok.test"], conf)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("temporary DNS error", err)

    def test_dns_server_silent_times_out(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            conf = self.config("slow.conf", "dns_nameserver = 127.0.0.1:%d\ndns_timeout = 300ms\n"
                               % silent.getsockname()[1])
            t0 = time.time()
            rc, out, err = self.run_ctl(["domain", "verify", "slow.test"], conf)
            self.assertLess(time.time() - t0, 10)
        finally:
            silent.close()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("no reply within 300ms", err)
        self.assertEqual(self.state("slow.test"), "pending_proof")

    def test_verify_all(self):
        rc, out, err = self.run_ctl(["domain", "verify", "--all"])
        # pending domains without a record are no error for cron; ok.test may be active by now
        self.assertEqual(rc, 0, err)
        self.assertIn("domain all-a.test verified", out)
        self.assertIn("domain all-b.test still pending_proof: no TXT record", out)
        self.assertEqual(self.state("all-a.test"), "active")
        self.assertEqual(self.state("all-b.test"), "pending_proof")
        rc, _, err = self.run_ctl(["domain", "verify"])
        self.assertEqual(rc, 2)

    # ---- delivery check ----

    def test_check_points_at_us(self):
        out, err = self.ok(["domain", "check", "ok.test"])
        self.assertIn("MX 10 mx1.example.net: ours", out)
        self.assertIn("MX 20 mx2.example.net: ours", out)  # dnsmasq sends it lower-cased
        self.assertIn("delivery OK", out)
        self.assertEqual(err, "")
        self.assertEqual(self.events("ok.test", "check")[-1]["ours"], True)

    def test_check_points_elsewhere_warns(self):
        out, err = self.ok(["domain", "check", "elsewhere.test"])
        self.assertIn("MX 5 mail.other-isp.test: NOT ours", out)
        self.assertIn("MX 10 mx1.example.net: ours", out)
        self.assertIn("warning", err)
        self.assertIn("1 of 2 MX hosts are not ours", err)
        ev = self.events("elsewhere.test", "check")[-1]
        self.assertEqual(ev["ours"], False)
        self.assertIn("5 mail.other-isp.test", ev["mx"])
        out, err = self.ok(["domain", "check", "nomx.test"])
        self.assertIn("has no MX record", err)

    # ---- the records mail programs find the servers by (issue 22) ----

    def client_check(self, dom):
        """domain check dom: exit status 0; (the client setup lines of stdout, the warnings)."""
        out, err = self.ok(["domain", "check", dom])
        lines = [x for x in out.splitlines() if x.startswith(("SRV ", "CNAME "))]
        warnings = err.splitlines()
        for w in warnings:
            self.assertTrue(w.startswith("vmailctl: warning: "), w)
        return lines, warnings

    def test_check_client_records_in_place(self):
        lines, warnings = self.client_check("ok.test")
        self.assertEqual(lines, ["SRV _imaps._tcp.ok.test: ok", "SRV _imap._tcp.ok.test: ok",
                                 "SRV _submissions._tcp.ok.test: ok",
                                 # smtp2 is there, at priority 20 behind mail.isp.test: still ok
                                 "SRV _submission._tcp.ok.test: ok",
                                 "SRV _autodiscover._tcp.ok.test: ok", "CNAME autoconfig.ok.test: ok"])
        self.assertEqual(warnings, [])
        out, _ = self.ok(["domain", "check", "ok.test"])
        self.assertIn("domain ok.test: mail programs OK", out)
        # the lines "domain show" prints are the records checked
        out, _ = self.ok(["domain", "show", "ok.test"])
        self.assertIn("_imaps._tcp.ok.test. SRV 0 1 993 mail.isp.test.", out.splitlines())
        self.assertIn("autoconfig.ok.test. CNAME mail.isp.test.", out.splitlines())

    def test_check_client_records_missing_or_different(self):
        lines, warnings = self.client_check("elsewhere.test")
        self.assertEqual(lines, ["SRV _submission._tcp.elsewhere.test: ok"])  # SMTP2.isp.test., priority 5
        pre = "vmailctl: warning: "
        self.assertEqual(warnings[1:], [  # after the MX warning
            pre + "SRV _imaps._tcp.elsewhere.test: different (found 0 1 993 mail.other-isp.test., "
                  "publish: _imaps._tcp.elsewhere.test. SRV 0 1 993 mail.isp.test.)",
            pre + "SRV _imap._tcp.elsewhere.test: different (found 0 1 1143 mail.isp.test., "
                  "publish: _imap._tcp.elsewhere.test. SRV 0 1 143 mail.isp.test.)",
            pre + "SRV _submissions._tcp.elsewhere.test: missing "
                  "(publish: _submissions._tcp.elsewhere.test. SRV 0 1 465 smtp2.isp.test.)",
            pre + "SRV _autodiscover._tcp.elsewhere.test: missing "
                  "(publish: _autodiscover._tcp.elsewhere.test. SRV 0 1 443 mail.isp.test.)",
            pre + "CNAME autoconfig.elsewhere.test: different (found www.other-isp.test., "
                  "publish: autoconfig.elsewhere.test. CNAME mail.isp.test.)"])
        self.assertIn("MX hosts are not ours", warnings[0])
        # a domain without any record: everything missing, still no refusal
        lines, warnings = self.client_check("nomx.test")
        self.assertEqual(lines, [])
        self.assertEqual(len(warnings), 1 + 6, warnings)
        self.assertTrue(all(": missing (publish: " in w for w in warnings[1:]), warnings)

    def test_check_follows_the_settings(self):
        """POP3 offered (pop3s only: pop3 wants the "not offered" record), another web host."""
        changes = [("client_services", "imaps imap pop3s submissions submission",
                    "imaps imap submissions submission"),
                   ("pop3_host", "mail.isp.test", ""), ("web_host", "www.isp.test", "mail.isp.test")]
        try:
            for key, new, _ in changes:
                self.ok(["settings", "set", key, new])
            lines, warnings = self.client_check("ok.test")
            self.assertIn("SRV _pop3._tcp.ok.test: ok", lines)  # dnsmasq's "." record
            self.assertIn("vmailctl: warning: SRV _pop3s._tcp.ok.test: missing "
                          "(publish: _pop3s._tcp.ok.test. SRV 0 1 995 mail.isp.test.)", warnings)
            self.assertIn("vmailctl: warning: CNAME autoconfig.ok.test: different (found mail.isp.test., "
                          "publish: autoconfig.ok.test. CNAME www.isp.test.)", warnings)
            self.assertIn("vmailctl: warning: SRV _autodiscover._tcp.ok.test: different (found 0 1 443 "
                          "mail.isp.test., publish: _autodiscover._tcp.ok.test. SRV 0 1 443 www.isp.test.)",
                          warnings)
            self.assertEqual(len(warnings), 3, warnings)
            lines, warnings = self.client_check("elsewhere.test")
            self.assertIn("vmailctl: warning: SRV _pop3._tcp.elsewhere.test: different (found 0 1 110 "
                          "mail.isp.test., publish: _pop3._tcp.elsewhere.test. SRV 0 0 0 .)", warnings)
            self.assertIn("vmailctl: warning: SRV _pop3s._tcp.elsewhere.test: different (found 0 0 1 ., "
                          "publish: _pop3s._tcp.elsewhere.test. SRV 0 1 995 mail.isp.test.)", warnings)
        finally:
            for key, _, old in changes:
                self.ok(["settings", "set", key, old])

    def test_check_client_records_dns_failure_is_temporary(self):
        dns = MxOnlyDns()
        try:
            conf = self.config("mxonly.conf", "dns_nameserver = 127.0.0.1:%d\n" % dns.port)
            rc, out, err = self.run_ctl(["domain", "check", "ok.test"], conf)
        finally:
            dns.stop()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("MX 10 mx1.example.net: ours", out)
        self.assertIn("delivery OK", out)
        self.assertNotIn(": ok", out)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertTrue(err.startswith("vmailctl: domain ok.test: temporary DNS error: "), err)
        self.assertIn("server failure (SERVFAIL)", err)  # the reply's own reason, with its server
        self.assertIn("127.0.0.1:%d" % dns.port, err)
        self.assertTrue(err.rstrip().endswith(
            " (SRV _imaps._tcp.ok.test); it and the records after it not checked"), err)
        self.assertEqual(self.events("ok.test", "check")[-1]["ours"], True)  # the MX part is recorded

    def test_check_without_mail_hosts_refused(self):
        conf_db = "vmail_domains_dns_nohosts"
        path = os.path.join(self.dir, "nohosts.conf")
        with open(path, "w") as f:
            f.write("database = %s\ndns_resolv_conf = %s\n" % (pgsql.dsn(conf_db), self.resolv))
        self.new_db(conf_db, path)
        self.ok(["customer", "add", "acme"], path)
        self.ok(["domain", "add", "acme", "ok.test"], path)
        rc, _, err = self.run_ctl(["domain", "check", "ok.test"], path)
        self.assertEqual(rc, 1)
        self.assertIn("settings set mail_hosts", err)

    # ---- the lookups client setup needs: SRV, A/AAAA, CNAME (issue 21) ----

    def probe(self, rtype, name, servers=None):
        p = subprocess.run([PROBE, servers or "127.0.0.1:%d" % self.dns.port, rtype, name],
                           capture_output=True, text=True, timeout=30)
        lines = p.stdout.splitlines()
        return p.returncode, lines[0] if lines else "", lines[1:]

    def test_srv(self):
        rc, status, rest = self.probe("SRV", "_imaps._tcp.ok.test")
        self.assertEqual((rc, status), (0, "found"), rest)
        self.assertEqual(rest, ["_imaps._tcp.ok.test", "0 1 993 mail.isp.test"])
        rc, status, rest = self.probe("SRV", "_submission._tcp.OK.test.")
        self.assertEqual((rc, status), (0, "found"), rest)
        self.assertEqual(sorted(rest[1:]), ["10 5 587 mail.isp.test", "20 5 587 smtp2.isp.test"])
        rc, status, rest = self.probe("SRV", "_pop3._tcp.ok.test")
        self.assertEqual((rc, status), (0, "found"), rest)
        self.assertEqual([r.split()[-1] for r in rest[1:]], ["."])  # "not offered" (dnsmasq: port 1)
        rc, status, rest = self.probe("SRV", "_imaps._tcp.missing.test")
        self.assertEqual((rc, status), (0, "no such name"), rest)

    def test_a_aaaa_cname(self):
        rc, status, rest = self.probe("A", "autoconfig.ok.test")
        self.assertEqual((rc, status), (0, "found"), rest)
        self.assertEqual(rest, ["mail.isp.test", "0 0 0 192.0.2.7"])  # the CNAME followed
        rc, status, rest = self.probe("CNAME", "autoconfig.ok.test")
        self.assertEqual((rc, status), (0, "found"), rest)
        self.assertEqual(rest, ["autoconfig.ok.test", "0 0 0 mail.isp.test"])
        rc, status, rest = self.probe("AAAA", "mail.isp.test")
        self.assertEqual((rc, status), (0, "found"), rest)
        self.assertEqual(rest[1:], ["0 0 0 2001:db8::7"])
        rc, status, rest = self.probe("A", "autoconfig.missing.test")
        self.assertEqual((rc, status), (0, "no such name"), rest)
        rc, status, rest = self.probe("CNAME", "mail.isp.test")  # a name with addresses only
        self.assertEqual((rc, status), (0, "no data"), rest)

    def test_lookups_down_are_temporary(self):
        port = free_udp_port()  # nothing listens there
        for rtype, name in (("SRV", "_imaps._tcp.ok.test"), ("A", "autoconfig.ok.test"),
                            ("CNAME", "autoconfig.ok.test")):
            rc, status, rest = self.probe(rtype, name, "127.0.0.1:%d" % port)
            self.assertEqual((rc, status), (EX_TEMPFAIL, "temporary failure"), rest)
            self.assertIn("127.0.0.1:%d: connection refused" % port, rest[0])

    def test_settings_and_help(self):
        out, _ = self.ok(["settings"])
        self.assertIn("mail_hosts", out)
        self.assertIn(MAIL_HOSTS, out)
        rc, _, err = self.run_ctl(["settings", "set", "mail_hosts", "not a host!"])
        self.assertEqual(rc, 1)
        self.assertIn("not a host name", err)
        rc, _, err = self.run_ctl(["settings", "set", "no_such_key", "1"])
        self.assertEqual(rc, 1)
        self.assertIn("unknown setting", err)
        for verb in ("verify", "check", "registered"):
            out, _ = self.ok(["domain", verb, "--help"])
            self.assertIn("Exit status" if verb == "verify" else "domain", out)
        out, _ = self.ok(["domain", "check", "--help"])
        self.assertIn("compared on port and target", out)
        out, _ = self.ok(["domain", "show", "--help"])
        self.assertIn("client_records", out)


if __name__ == "__main__":
    unittest.main()
