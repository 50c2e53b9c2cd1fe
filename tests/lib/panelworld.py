"""panelworld: a private PostgreSQL database with one customer, and build/vmail-panel in front
of it, connecting as a role that is only a member of vmail_panel (standard library only).

    w = PanelWorld("panel_http", session_idle_timeout="30m")
    w.start()  ... w.url ... w.sql("...") ... w.stop()

The customer acme owns acme.lublin.pl (active, the mail domain of jan) and acme.com.pl
(external, awaiting proof).  Shell accounts jan, ola and ewa (100 MiB disk limit each) have
the password PASSWORD, stored as legacy {SHA512-CRYPT} hashes as if imported from shadow.
"""
import http.client
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pgsql
from world import free_port  # noqa: F401 (test_panel_http imports it from here)

REPO = pgsql.REPO
BUILD = os.environ.get("VMAIL_BUILD_DIR", os.path.join(REPO, "build"))
PANEL = os.path.join(BUILD, "vmail-panel")
PANEL_ROLE = "panel_test"
PASSWORD = "janpass123"
LOGINS = ("jan", "ola", "ewa")
MiB = 1 << 20


def sha512_crypt(password):
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n",
                         capture_output=True, text=True, check=True)
    return "{SHA512-CRYPT}" + out.stdout.strip()


def panel_dsn(db):
    return f"host={pgsql.socket_dir()} dbname={db} user={PANEL_ROLE}"


class PanelWorld:
    def __init__(self, name, panel_database=None, unix_socket=False, **settings):
        self.name = name
        self.panel_database = panel_database
        self.settings = {"cookie_secure": "no", "login_failure_delay": "300ms",
                         "log_level": "debug"}
        self.settings.update(settings)
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="vmail-panel-", dir="/tmp")
        self.log_path = os.path.join(self.dir, "panel.log")
        # a second listener on a unix socket, as the shipped nginx setup uses
        self.unix_path = os.path.join(self.dir, "http.sock") if unix_socket else None

    # -- database --
    def sql(self, text):
        return pgsql.query(self.db, text)

    def sql_as_panel(self, text):
        """Run text as the panel's role; returns (ok, stderr)."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                            panel_dsn(self.db)], input=text, capture_output=True, text=True,
                           timeout=60)
        return r.returncode == 0, r.stdout + r.stderr

    def load(self):
        pgsql.server_up()
        self.db = pgsql.fresh_database(self.name)
        pgsql.query("postgres", f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PANEL_ROLE}') THEN
                CREATE ROLE {PANEL_ROLE} LOGIN IN ROLE vmail_panel;
            END IF; END $$""")
        h = sha512_crypt(PASSWORD)
        shells = "".join(
            f"SELECT vmail.shell_add('acme', '{login}', {5001 + i}, {5001 + i}, '/home/{login}', "
            f"'{h}', {100 * MiB});\n" for i, login in enumerate(LOGINS))
        self.sql(f"""
            SELECT vmail.customer_add('acme', 'ACME sp. z o.o.');
            SELECT vmail.domain_add('acme', 'acme.lublin.pl');
            SELECT vmail.domain_set_state('acme.lublin.pl', 'active');
            SELECT vmail.domain_add('acme', 'acme.com.pl');
            {shells}
            SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl');
            SELECT vmail.shell_set('ola', 'mail_domain', 'acme.lublin.pl');
            SELECT vmail.usage_set_files('jan', {12 * MiB});
        """)

    # -- the panel --
    def start(self):
        if not os.access(PANEL, os.X_OK):
            raise RuntimeError(f"no vmail-panel at {PANEL} (set VMAIL_BUILD_DIR)")
        self.load()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = os.path.join(self.dir, "vmail-panel.conf")
        with open(conf, "w") as f:
            # vmaild's keys may share the file: the panel ignores them
            f.write(f"database = {pgsql.dsn(self.db)}\n")
            f.write(f"panel_database = {self.panel_database or panel_dsn(self.db)}\n")
            listen = f"inet:127.0.0.1:{self.port}"
            if self.unix_path:
                listen += f", unix:{self.unix_path}"
            f.write(f"panel_listen = {listen}\n")
            f.write("socketmap_listen = unix:/nonexistent/socketmap\n")
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")
        env = dict(os.environ, VMAIL_PWHASH_COST="test", VMAILD_TEST_ALLOW_ROOT="1")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([PANEL, "-c", conf], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vmail-panel exited: " + self.log_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                if self.unix_path:
                    # the listeners open in panel_listen's order: loopback may accept
                    # before the unix socket exists
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as u:
                        u.settimeout(0.2)
                        u.connect(self.unix_path)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("vmail-panel did not listen: " + self.log_text())

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None


class Response:
    def __init__(self, r, body, elapsed):
        self.status = r.status
        self.headers = r.headers
        self.body = body.decode("utf-8")
        self.elapsed = elapsed

    def header(self, name):
        return self.headers.get(name)

    def cookies(self):
        return self.headers.get_all("Set-Cookie") or []

    def csrf(self):
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', self.body)
        return m.group(1) if m else None

    def errors(self):
        return [html_text(e) for e in re.findall(r'<p class="error"[^>]*>(.*?)</p>', self.body, re.S)]


def html_text(s):
    s = re.sub(r"<[^>]+>", "", s)
    for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&amp;", "&")):
        s = s.replace(a, b)
    return s


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the panel's unix socket, connected as euid (SO_PEERCRED records the
    credentials at connect(); the tests run as root and may take any uid for a moment)."""

    def __init__(self, path, euid=None, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path, self.euid = path, euid

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        if self.euid is None:
            s.connect(self.path)
        else:
            os.setegid(self.euid)
            os.seteuid(self.euid)
            try:
                s.connect(self.path)
            finally:
                os.seteuid(0)
                os.setegid(0)
        self.sock = s


class Browser:
    """A minimal cookie-keeping HTTP client (one per simulated user).  With unix=True it
    talks over the world's unix socket, as uid euid if given (else as the test's uid)."""

    def __init__(self, world, lang=None, real_ip=None, unix=False, euid=None):
        self.world = world
        self.jar = {}
        self.lang = lang
        self.real_ip = real_ip
        self.unix = unix
        self.euid = euid

    def connection(self):
        if self.unix:
            return UnixHTTPConnection(self.world.unix_path, self.euid)
        return http.client.HTTPConnection("127.0.0.1", self.world.port, timeout=30)

    def request(self, method, path, form=None, headers=None, raw_body=None):
        conn = self.connection()
        h = dict(headers or {})
        if self.jar:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if self.lang:
            h["Accept-Language"] = self.lang
        if self.real_ip:
            h["X-Real-IP"] = self.real_ip
        body = raw_body
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        t0 = time.monotonic()
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        elapsed = time.monotonic() - t0
        conn.close()
        resp = Response(r, data, elapsed)
        for c in resp.cookies():
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in c or value == "":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form, **kw):
        return self.request("POST", path, form=form, **kw)

    def login(self, login, password=PASSWORD):
        page = self.get("/login")
        return self.post("/login", {"csrf": page.csrf(), "login": login, "password": password})

    def overview(self):
        r = self.get("/")
        assert r.status == 200, (r.status, r.header("Location"))
        return r
