"""The systemd files in contrib/systemd, and socket activation without systemd.

UnitFilesTest runs `systemd-analyze verify` on every unit (ExecStart pointed at
the built programs, man pages looked up in docs/), checks the hardening the
units promise, and feeds the sysusers.d and tmpfiles.d files to
systemd-sysusers and systemd-tmpfiles under a scratch root.

SocketActivationTest starts vmaild the way vmaild-socketmap.socket would:
tests/lib/sd_launch.py binds the socket as root (owner postfix, mode 0600, in
a root-only directory, like Postfix's private/), drops to nobody and execs
vmaild with LISTEN_FDS.  vmaild must answer on the passed socket while holding
no capability and never having been root.

Run as root after building:  python3 -m unittest -v tests/e2e/test_systemd_units.py
"""

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import smclient
import world

UNIT_DIR = os.path.join(world.REPO, "contrib", "systemd")
LAUNCH = os.path.join(world.REPO, "tests", "lib", "sd_launch.py")

# What every long-running unit must carry (reliability.md §3, postsrsd/chatmail units).
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}

DATA_SQL = """
SELECT vmail.customer_add('acme', 'ACME');
SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{CRYPT}x', 1073741824);
SELECT vmail.domain_add('acme', 'acme.lublin.pl');
SELECT vmail.domain_set_state('acme.lublin.pl', 'active');
SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl');
SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'jan', '{CRYPT}x', 104857600);
"""


def unit_settings(path):
    """{section: {key: [values]}} of a unit file (no continuation lines in ours)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            m = re.match(r"^\[(\w+)\]$", line)
            if m:
                section = out.setdefault(m.group(1), {})
                continue
            key, _, value = line.partition("=")
            section.setdefault(key.strip(), []).append(value.strip())
    return out


def missing_tools():
    for tool in ("systemd-analyze", "systemd-sysusers", "systemd-tmpfiles"):
        if not shutil.which(tool):
            return tool + " is not installed (Debian package systemd)"
    if not os.path.exists(os.path.join(world.BUILD, "vmaild")):
        return "no vmaild in " + world.BUILD
    return None


class UnitFilesTest(unittest.TestCase):
    def setUp(self):
        why = missing_tools()
        if why:
            self.fail(why)  # CI counts skips as failures anyway: say why loudly
        self.tmp = tempfile.mkdtemp(prefix="vmail-units-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def units(self):
        files = sorted(glob.glob(os.path.join(UNIT_DIR, "*.service")) +
                       glob.glob(os.path.join(UNIT_DIR, "*.socket")) +
                       glob.glob(os.path.join(UNIT_DIR, "*.timer")))
        self.assertTrue(files, "no units in contrib/systemd")
        return files

    def staged(self):
        """Copies of the units with ExecStart pointing at programs that exist here."""
        panel = os.path.join(world.BUILD, "vmail-panel")
        if not os.path.exists(panel):
            panel = "/bin/true"  # the panel is verified for syntax; its binary may not be built
        out = []
        for src in self.units():
            with open(src) as f:
                text = f.read()
            text = text.replace("/usr/sbin/vmaild ", os.path.join(world.BUILD, "vmaild") + " ")
            text = text.replace("/usr/sbin/vmail-panel ", panel + " ")
            text = text.replace("/usr/bin/vmailctl ", os.path.join(world.BUILD, "vmailctl") + " ")
            dst = os.path.join(self.tmp, os.path.basename(src))
            with open(dst, "w") as f:
                f.write(text)
            out.append(dst)
        return out

    def manpath(self):
        """docs/ laid out as a man hierarchy, so Documentation=man:... is checked too."""
        root = os.path.join(self.tmp, "man")
        for sec in ("1", "5", "8"):
            os.makedirs(os.path.join(root, "man" + sec), exist_ok=True)
            for page in glob.glob(os.path.join(world.REPO, "docs", "*." + sec)):
                os.symlink(page, os.path.join(root, "man" + sec, os.path.basename(page)))
        return root

    def test_verify(self):
        units = self.staged()
        env = dict(os.environ, MANPATH=self.manpath())
        have_panel_man = os.path.exists(os.path.join(world.REPO, "docs", "vmail-panel.8"))
        checked = [u for u in units if have_panel_man or "vmail-panel" not in u]
        r = subprocess.run(["systemd-analyze", "verify"] + checked, capture_output=True,
                           text=True, env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip() + r.stderr.strip(), "", "verify printed warnings")
        rest = [u for u in units if u not in checked]
        if rest:  # vmail-panel(8) is not written yet: everything but the man page
            r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + rest,
                               capture_output=True, text=True, cwd=self.tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        print("\n  systemd-analyze verify: %d units clean" % len(units))

    def test_service_contract(self):
        svc = unit_settings(os.path.join(UNIT_DIR, "vmaild.service"))["Service"]
        self.assertEqual(svc["Type"], ["notify"])
        self.assertEqual(svc["Restart"], ["on-failure"])
        self.assertIn("kill -HUP $MAINPID", svc["ExecReload"][0])
        self.assertEqual(svc["User"], ["vmail"])
        self.assertTrue(any(v.startswith("@system-service") for v in svc["SystemCallFilter"]))
        self.assertTrue(any(v.startswith("~@privileged") for v in svc["SystemCallFilter"]))
        for name in ("vmaild.service", "vmail-panel.service"):
            svc = unit_settings(os.path.join(UNIT_DIR, name))["Service"]
            for key, value in HARDENING.items():
                self.assertEqual(svc.get(key), [value], "%s: %s" % (name, key))
            self.assertNotIn("AmbientCapabilities", {k for k, v in svc.items() if v != [""]})

    def test_socket_units(self):
        """Each socket unit names vmaild.service and a descriptor name vmaild.conf can use."""
        want = {
            "vmaild-socketmap.socket": ("socketmap", "postfix", "0600"),
            "vmaild-policy.socket": ("policy", "postfix", "0600"),
            # contrib/dovecot/README.md: dict_socket_owner = root, dict_socket_mode = 0600
            "vmaild-dict.socket": ("dict", "root", "0600"),
            "vmaild-dict-quota.socket": ("dict_quota", "vmail", "0666"),
            "vmaild-metrics.socket": ("metrics", None, None),
        }
        for name, (fdname, user, mode) in want.items():
            sock = unit_settings(os.path.join(UNIT_DIR, name))["Socket"]
            self.assertEqual(sock["FileDescriptorName"], [fdname], name)
            self.assertEqual(sock["Service"], ["vmaild.service"], name)
            if user:
                self.assertEqual(sock["SocketUser"], [user], name)
                self.assertEqual(sock["SocketMode"], [mode], name)
            else:  # TCP: loopback only
                self.assertTrue(sock["ListenStream"][0].startswith("127.0.0.1:"), name)
            self.assertNotIn("Accept", sock, name)  # Accept=no: one vmaild, many clients
        smap = unit_settings(os.path.join(UNIT_DIR, "vmaild-socketmap.socket"))["Socket"]
        self.assertTrue(smap["ListenStream"][0].startswith("/var/spool/postfix/private/"))

    def test_sysusers_and_tmpfiles(self):
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "etc"))
        for f in ("passwd", "group"):
            open(os.path.join(root, "etc", f), "w").close()
        with open(os.path.join(root, "etc", "group"), "w") as f:
            f.write("www-data:x:33:\n")  # nginx's group, from Debian's base-passwd
        r = subprocess.run(["systemd-sysusers", "--root=" + root,
                            os.path.join(UNIT_DIR, "vmaild.sysusers.conf"),
                            os.path.join(UNIT_DIR, "vmail-panel.sysusers.conf")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(root, "etc", "passwd")) as f:
            passwd = f.read()
        with open(os.path.join(root, "etc", "group")) as f:
            group = f.read()
        self.assertRegex(passwd, r"(?m)^vmail:x:\d+:\d+:[^:]*:/:/usr/sbin/nologin$")
        self.assertRegex(passwd, r"(?m)^vmail-panel:")
        self.assertRegex(group, r"(?m)^vmail:x:\d+:$")  # the panel is not in vmail's group
        os.makedirs(os.path.join(root, "etc", "vmaild"))
        conf = os.path.join(root, "etc", "vmaild", "vmaild.conf")
        with open(conf, "w") as f:
            f.write("database = password=secret\n")
        os.chmod(conf, 0o644)
        panel_conf = os.path.join(root, "etc", "vmaild", "vmail-panel.conf")
        with open(panel_conf, "w") as f:
            f.write("panel_database = password=secret\n")
        os.chmod(panel_conf, 0o644)
        r = subprocess.run(["systemd-tmpfiles", "--root=" + root, "--create",
                            os.path.join(UNIT_DIR, "vmaild.tmpfiles.conf"),
                            os.path.join(UNIT_DIR, "vmail-panel.tmpfiles.conf")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # the panel's socket directory: nginx's group (inherited by the socket), nobody else
        st = os.stat(os.path.join(root, "run", "vmail-panel"))
        self.assertEqual(st.st_mode & 0o7777, 0o2750)
        self.assertEqual(st.st_gid, 33)
        panel_uid = int(re.search(r"(?m)^vmail-panel:x:(\d+):", passwd).group(1))
        self.assertEqual(st.st_uid, panel_uid)
        st = os.stat(os.path.join(root, "run", "vmaild"))
        self.assertEqual(st.st_mode & 0o7777, 0o755)
        vmail_uid = int(re.search(r"(?m)^vmail:x:(\d+):", passwd).group(1))
        self.assertEqual(st.st_uid, vmail_uid)
        self.assertEqual(os.stat(conf).st_mode & 0o7777, 0o640)
        self.assertEqual(os.stat(conf).st_gid, int(re.search(r"(?m)^vmail:x:(\d+):", group).group(1)))
        st = os.stat(panel_conf)
        self.assertEqual(st.st_mode & 0o7777, 0o640)
        self.assertEqual(st.st_gid, int(re.search(r"(?m)^vmail-panel:x:(\d+):", group).group(1)))


class InstallTest(unittest.TestCase):
    """cmake --install into a staging directory: what a package would contain."""

    def test_install_tree(self):
        cmake = shutil.which("cmake")
        if not cmake or not os.path.exists(os.path.join(world.BUILD, "CMakeCache.txt")):
            self.fail("cmake or the build directory %s is missing" % world.BUILD)
        dest = tempfile.mkdtemp(prefix="vmail-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        r = subprocess.run([cmake, "--install", world.BUILD, "--prefix", "/usr"],
                           env=dict(os.environ, DESTDIR=dest), capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        files = {os.path.relpath(os.path.join(d, f), dest)
                 for d, _, fs in os.walk(dest) for f in fs}
        for want in ("usr/sbin/vmaild", "usr/bin/vmailctl", "usr/share/man/man8/vmaild.8",
                     "usr/share/man/man5/vmaild.conf.5", "usr/share/vmaild/schema/011_baseline.sql",
                     "usr/share/doc/vmaild/examples/vmaild.conf",
                     "usr/share/doc/vmaild/examples/systemd/vmaild.service",
                     "usr/share/doc/vmaild/examples/systemd/vmaild-socketmap.socket",
                     "usr/share/doc/vmaild/examples/postfix/main.cf.vmaild"):
            self.assertIn(want, files)
        self.assertTrue(os.access(os.path.join(dest, "usr/sbin/vmaild"), os.X_OK))

    def test_example_config_is_valid(self):
        """conf/vmaild.conf passes vmaild -t (its socket-activation endpoints included)."""
        r = subprocess.run([os.path.join(world.BUILD, "vmaild"), "-t", "-c",
                            os.path.join(world.REPO, "conf", "vmaild.conf")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("socketmap_listen = systemd:socketmap", r.stdout)


class SocketActivationTest(unittest.TestCase):
    """vmaild serving a socket it did not bind, as an unprivileged user from the start."""

    @classmethod
    def setUpClass(cls):
        why = world.missing_prerequisites()
        if why:
            raise unittest.SkipTest(why)
        cls.w = world.World("vmail-sdlisten")
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql(DATA_SQL)
            # Like /var/spool/postfix/private: a directory only root (postfix) may enter.
            private = cls.w.path("private")
            os.makedirs(private)
            os.chmod(private, 0o711)
            cls.socket = os.path.join(private, "vmaild")
            cls.spare = os.path.join(private, "spare")
            cls.metrics = os.path.join(private, "metrics")
            cls.dict_quota = os.path.join(private, "dict-quota")
            wrapper = [LAUNCH, "--user", "nobody",
                       "--listen", "socketmap=unix:%s:postfix:0600" % cls.socket,
                       "--listen", "spare=unix:%s::0600" % cls.spare,
                       "--listen", "metrics=unix:%s::0600" % cls.metrics,
                       "--listen", "dict_quota=unix:%s::0666" % cls.dict_quota, "--"]
            cls.vd = cls.w.vmaild(cls.pg.dsn, "systemd:socketmap", wrapper=wrapper,
                                  metrics_listen="systemd:metrics",
                                  dict_quota_listen="systemd:dict_quota")
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def test_answers_on_passed_socket(self):
        with smclient.Client(self.socket) as c:
            self.assertEqual(c.lookup("mailbox", "biuro@acme.lublin.pl"),
                             "OK biuro@acme.lublin.pl")
            self.assertEqual(c.lookup("mailbox", "nobody@acme.lublin.pl"), "NOTFOUND ")
        st = os.stat(self.socket)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(st.st_uid, pwd.getpwnam("postfix").pw_uid)
        log = self.vd.log()
        self.assertIn("systemd:socketmap: listening", log)

    def test_no_privilege(self):
        with open("/proc/%d/status" % self.vd.pid) as f:
            status = f.read()
        nobody = pwd.getpwnam("nobody").pw_uid
        uids = re.search(r"(?m)^Uid:\s+(.*)$", status).group(1).split()
        self.assertEqual({int(u) for u in uids}, {nobody})
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            value = int(re.search(r"(?m)^%s:\s+([0-9a-f]+)$" % cap, status).group(1), 16)
            if cap != "CapBnd":  # the bounding set is systemd's (CapabilityBoundingSet=)
                self.assertEqual(value, 0, cap)
        self.assertNotIn("running as root", self.vd.log())

    def test_metrics_on_passed_socket(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.metrics)
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1."), data[:100])
        self.assertIn(b" 200 ", data.split(b"\r\n", 1)[0])

    def test_dict_on_passed_socket(self):
        """The dict service's peer check works on a socket systemd bound (root is trusted)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.dict_quota)
        s.sendall(b"H3\t2\t0\t\tquota\nLpriv/quota/storage\tbiuro@acme.lublin.pl\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertRegex(data.decode(), r"^(O\d+|N)\n$")

    def test_inet_dict_refused(self):
        """A socket unit with ListenStream=HOST:PORT cannot carry the dict service."""
        d = self.w.path("vmaild-inet-dict")
        os.makedirs(d, exist_ok=True)
        vd = world.Vmaild(d, self.pg.dsn, "systemd:socketmap", dict_quota_listen="systemd:dq",
                          wrapper=[LAUNCH, "--user", "nobody", "--listen",
                                   "socketmap=unix:%s::0600" % os.path.join(d, "s"),
                                   "--listen", "dq=inet:127.0.0.1:%d" % world.free_port(), "--"])
        with vd:
            with self.assertRaises(RuntimeError):
                vd.start(timeout=5)
            self.assertIn("dict listeners must be unix sockets", vd.log())

    def test_unused_socket_closed(self):
        self.assertRegex(self.vd.log(), r'socket named "spare" \(descriptor 4\) that no '
                                        r'\*_listen setting uses; closing it')
        with self.assertRaises(OSError):
            smclient.Client(self.spare, timeout=2).lookup("domain", "acme.lublin.pl")

    def test_missing_name_is_fatal(self):
        """A configuration naming a socket systemd did not pass fails at startup, clearly."""
        d = self.w.path("vmaild-missing")
        vd = world.Vmaild(d, self.pg.dsn, "systemd:nosuch", wrapper=[
            LAUNCH, "--user", "nobody", "--listen",
            "socketmap=unix:%s::0600" % os.path.join(d, "s"), "--"])
        os.makedirs(d, exist_ok=True)
        with vd:
            with self.assertRaises(RuntimeError):
                vd.start(timeout=5)
            self.assertNotEqual(vd.proc.wait(5), 0)
            self.assertIn("no socket unit with FileDescriptorName=nosuch", vd.log())


if __name__ == "__main__":
    unittest.main()
