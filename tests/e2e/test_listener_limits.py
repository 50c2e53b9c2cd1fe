"""End-to-end: per-listener and per-uid connection caps (issue 14, item 4).

The dict quota socket is 0666: every local user may connect.  Local users that
fill it must not take the connections Postfix's socketmap needs; one uid may
hold only dict_quota_max_connections_per_uid of them; a connection refused for
either cap is answered "full" (a reset one lets Dovecot store the mail uncounted)
from a pool of at most 32 per service, beyond which it is closed at accept; the
metrics listener and the panel close connections beyond their own caps at accept.

Every assertion counts connections (answered, or closed at once); none times them.
Run as root after building:  python3 tests/pyrun.py tests/e2e/test_listener_limits.py
"""

import http.client
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402

DATA_SQL = """
SELECT vmail.customer_add('acme', 'ACME');
SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{CRYPT}x', 1073741824);
SELECT vmail.domain_add('acme', 'acme.lublin.pl');
SELECT vmail.domain_set_state('acme.lublin.pl', 'active');
SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl');
SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'jan', '{CRYPT}x', 104857600);
"""

# A local user's process: open COUNT connections to the quota socket, say hello and ask
# one lookup on each, and wait until every one was answered (a real counter, or "full":
# refused over a cap) or closed unanswered (or 10 s passed: "silent", a connection left
# in the backlog).  Print the counts, then hold the answered
# connections open until stdin closes.
FLOODER = r"""
import json, select, socket, sys, time
path, count = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
        s.send(b"H3\t2\t0\t\tquota\nLpriv/quota/storage\tbiuro@acme.lublin.pl\n")
    except OSError:
        pass
    socks.append(s)
state = {s: None for s in socks}
deadline = time.monotonic() + 10
while any(v is None for v in state.values()) and time.monotonic() < deadline:
    waiting = [s for s, v in state.items() if v is None]
    ready, _, _ = select.select(waiting, [], [], 0.2)
    for s in ready:
        try:
            data = s.recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        state[s] = ("full" if data.startswith(b"O9223372036854775807\n") else "answered") \
            if data else "closed"
counts = {"answered": 0, "full": 0, "closed": 0, "silent": 0}
for v in state.values():
    counts[v or "silent"] += 1
print(json.dumps(counts), flush=True)
sys.stdin.read()
"""

# The flooders run as unprivileged uids, which may not reach a python under /root.
FLOODER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
UIDS = 20          # local users flooding, one after the other
PER_UID = 40       # connections each opens
PER_UID_CAP = 32   # dict_quota_max_connections_per_uid in this test
REFUSING_PER_UID = 4  # SERVER_REFUSING_PER_UID: a uid's share of the refusing pool (32)
PROBE_TIMEOUT_S = 15


def metric(text, name, **labels):
    """The value of one sample of the Prometheus text, or None."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return None


def hold_http(port, path):
    """A keep-alive HTTP/1.1 connection that got one full answer to GET path, or None when
    the server closed it without one (refused at accept)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return c
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        c.close()
        return None


def scrape(port):
    """GET /metrics, retried while the server is still counting closed scrapers out."""
    for _ in range(50):
        c = hold_http(port, "/metrics")
        if c is None:
            continue
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            return r.read().decode()
        finally:
            c.close()
    raise AssertionError("every scrape was refused")


SKIP = world.missing_prerequisites()


@unittest.skipIf(SKIP, SKIP)
class QuotaFloodTest(unittest.TestCase):
    """Local users fill the quota socket; Postfix's socketmap lookups are still answered."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World()
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql(DATA_SQL)
            cls.pf = cls.w.postfix(start=False)  # postmap -q as Postfix's own client
            cls.socket = cls.w.path("vmaild", "socketmap")
            cls.quota = cls.w.path("vmaild", "quota")
            cls.metrics_port = world.free_port()
            # max_connections and the per-uid cap are lowered so that the test stays
            # small; the default dict_quota_max_connections (500) is what is tested.
            cls.vd = cls.w.vmaild(cls.pg.dsn, "unix:" + cls.socket,
                                  dict_quota_listen="unix:" + cls.quota,
                                  dict_quota_max_connections_per_uid=PER_UID_CAP,
                                  max_connections=600, idle_timeout="120s",
                                  metrics_listen="inet:127.0.0.1:%d" % cls.metrics_port)
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def postmap(self, key):
        """postmap -q through Postfix's socketmap client; (status, stdout, stderr)."""
        try:
            r = subprocess.run(["postmap", "-c", self.pf.conf, "-q", key,
                                "socketmap:unix:%s:mailbox" % self.socket], cwd=self.pf.spool,
                               capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
            return r.returncode, r.stdout.strip(), r.stderr.strip()
        except subprocess.TimeoutExpired:
            return (None, "", "no answer in %d s" % PROBE_TIMEOUT_S)

    def test_flood_leaves_socketmap_answering(self):
        self.assertEqual(self.postmap("biuro@acme.lublin.pl")[:2], (0, "biuro@acme.lublin.pl"))
        flooders, per_uid = [], []
        try:
            for i in range(UIDS):
                uid = 40001 + i
                p = subprocess.Popen([FLOODER_PYTHON, "-c", FLOODER, self.quota, str(PER_UID)],
                                     user=uid, group=uid, extra_groups=[],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                flooders.append(p)
                per_uid.append(json.loads(p.stdout.readline()))
            totals = {k: sum(c[k] for c in per_uid) for k in per_uid[0]}
            rc, out, err = self.postmap("biuro@acme.lublin.pl")
            print("\n  %d local users x %d quota connections: %s; postmap: %s %r %s"
                  % (UIDS, PER_UID, totals, rc, out, err))
            self.assertEqual((rc, out), (0, "biuro@acme.lublin.pl"),
                             "socketmap starved: %s\nvmaild log tail:\n%s"
                             % (err, self.vd.log()[-2000:]))
            # 15 users get 32 each, and their 8 more are refused: answered "full" (at least
            # the uid's pool share; more when the pool emptied meanwhile) or closed at
            # accept, never reset unanswered after the accept nor left silent.
            for counts in per_uid[:15]:
                self.assertEqual((counts["answered"], counts["silent"]), (PER_UID_CAP, 0), counts)
                self.assertGreaterEqual(counts["full"], REFUSING_PER_UID, counts)
                self.assertEqual(counts["full"] + counts["closed"], PER_UID - PER_UID_CAP, counts)
            # The 16th gets the last 20 of the 500 and the same for its other 20; the last 4
            # find the service full: at least their share of the pool is answered each.
            self.assertEqual((per_uid[15]["answered"], per_uid[15]["silent"]), (20, 0))
            for counts in per_uid[15:]:
                self.assertEqual(counts["silent"], 0, counts)
                self.assertGreaterEqual(counts["full"], REFUSING_PER_UID, counts)
                self.assertEqual(counts["answered"] + counts["full"] + counts["closed"], PER_UID,
                                 counts)
            text = scrape(self.metrics_port)
            self.assertEqual(metric(text, "vmaild_listener_connections",
                                    listener="dict_quota"), 500)
            self.assertEqual(metric(text, "vmaild_connections_refused_total",
                                    listener="dict_quota", reason="uid_limit"), 15 * 8)
            self.assertEqual(metric(text, "vmaild_connections_refused_total",
                                    listener="dict_quota", reason="listener_limit"),
                             20 + 4 * PER_UID)
            self.assertEqual(metric(text, "vmaild_connections_refused_total",
                                    listener="socketmap", reason="listener_limit"), 0)
            self.assertIn("dict_quota_max_connections_per_uid is 32", self.vd.log())
        finally:
            for p in flooders:
                p.stdin.close()
                p.wait()
                p.stdout.close()


@unittest.skipIf(SKIP, SKIP)
class MetricsCapTest(unittest.TestCase):
    """metrics_max_connections: connections beyond it are closed at accept and counted."""

    def test_metrics_cap(self):
        with world.World() as w:
            pg = w.postgres()
            port = world.free_port()
            w.vmaild(pg.dsn, "unix:" + w.path("vmaild", "socketmap"),
                     metrics_listen="inet:127.0.0.1:%d" % port, metrics_max_connections=3)
            held = [hold_http(port, "/metrics") for _ in range(3)]
            self.assertNotIn(None, held)
            refused = [hold_http(port, "/metrics") for _ in range(4)]
            self.assertEqual(refused, [None] * 4)
            for c in held:
                c.close()
            text = scrape(port)
            got = metric(text, "vmaild_connections_refused_total", listener="metrics",
                         reason="listener_limit")
            self.assertGreaterEqual(got, 4)


class PanelCapTest(unittest.TestCase):
    """panel_max_connections: the same for vmail-panel's HTTP listener."""

    def test_panel_cap(self):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "lib"))
        from panelworld import PanelWorld
        w = PanelWorld("panel_cap", panel_max_connections="4")
        try:
            w.start()
            held = [hold_http(w.port, "/login") for _ in range(4)]
            self.assertNotIn(None, held, w.log_text()[-2000:])
            refused = [hold_http(w.port, "/login") for _ in range(3)]
            self.assertEqual(refused, [None] * 3, w.log_text()[-2000:])
            for c in held:
                c.close()
            self.assertIn("panel_listen: 4 connections, the cap is 4", w.log_text())
        finally:
            w.stop()


if __name__ == "__main__":
    unittest.main()
