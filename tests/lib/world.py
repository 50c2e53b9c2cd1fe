"""world: private PostgreSQL, vmaild and Postfix instances for end-to-end tests.

Everything lives in one temporary directory under /tmp (mode 0755, so that the
postgres and postfix users can reach it) and is torn down by World.close(),
also when a test fails half-way.  Python 3 standard library only.

    with World() as w:
        pg = w.postgres()                 # started, schema applied
        pg.psql("SELECT vmail.customer_add('acme')")
        vd = w.vmaild(socketmap_listen="unix:" + path)   # waits for READY=1
        pf = w.postfix(main_cf=text)      # smtpd on 127.0.0.1:pf.port
        with pf.smtp() as s: ...

Each class also works alone: construct, start(), stop(); they are context
managers.  Needs root (Postfix and the privilege drop of vmaild).

Environment: VMAIL_BUILD_DIR (default <repo>/build) holds vmaild and vmailctl;
VMAIL_KEEP_WORLD=1 keeps the directory for post-mortems.
"""

import contextlib
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VMAIL_BUILD_DIR", os.path.join(REPO, "build"))
PG_SH = os.path.join(REPO, "tests", "world", "pg.sh")
POSTFIX_MAIN_CF = "/etc/postfix/main.cf"


_next_port = None


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port (TCP, or UDP with kind=socket.SOCK_DGRAM) that is free now, for a server
    a test starts next.  Taken below the kernel's ephemeral range, never from it: a port the
    kernel hands out (bind to port 0) is also what it gives the next outgoing connection or
    DNS query of any process, which can take it before the server binds.  Below that range
    only tests pick ports; each process walks from its own point (by pid) and never hands
    out a port twice, and a port found in use is skipped."""
    global _next_port
    hi = min(_ephemeral_low(), 65536)
    lo = max(1024, hi - 12000)
    if _next_port is None:
        _next_port = lo + (os.getpid() * 7919) % (hi - lo)
    for _ in range(hi - lo):
        port = _next_port
        _next_port = lo + (_next_port + 1 - lo) % (hi - lo)
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port in {lo}..{hi - 1}")


def wait_for(what, predicate, timeout=10.0, interval=0.05):
    """Poll predicate() until it returns something true; its value, or raise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(interval)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_report(text):
    """The lines of an ASan/LSan/UBSan report in a program's log, or ''."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if any(mark in line for mark in SANITIZER_MARKS):
            return "\n".join(lines[i:i + 40])
    return ""


def missing_prerequisites():
    """Why the world cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (Postfix instance, privilege drop)"
    for tool in ("postfix", "postmap", "postconf", "psql"):
        if not shutil.which(tool):
            return tool + " is not installed"
    if not os.path.exists(os.path.join(BUILD, "vmaild")):
        return "no vmaild in " + BUILD + " (build first or set VMAIL_BUILD_DIR)"
    return None


class Postgres:
    """A private PostgreSQL 15 on a unix socket in dir, via tests/world/pg.sh."""

    def __init__(self, dir):
        self.dir = dir
        self.dsn = None

    def start(self):
        out = subprocess.run([PG_SH, "start", self.dir], check=True, capture_output=True,
                             text=True).stdout
        self.dsn = out.strip().splitlines()[-1]
        return self

    def stop(self):
        """Fast shutdown (clients are disconnected)."""
        subprocess.run([PG_SH, "stop", self.dir], check=True, capture_output=True)

    def kill(self):
        """Immediate shutdown: what a crash looks like to clients."""
        subprocess.run([PG_SH, "kill", self.dir], check=True, capture_output=True)

    def psql(self, sql):
        """Run SQL (stops at the first error); returns unaligned output."""
        return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.dsn],
                              input=sql, check=True, capture_output=True, text=True).stdout

    def apply_schema(self, config_path):
        """vmailctl db migrate, as an administrator would (the suites always build vmailctl)."""
        subprocess.run([os.path.join(BUILD, "vmailctl"), "-c", config_path, "db", "migrate",
                        "--schema-dir", os.path.join(REPO, "schema")], check=True, capture_output=True)

    def close(self):
        if self.dsn:
            subprocess.run([PG_SH, "stop", self.dir], capture_output=True)
            self.dsn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Vmaild:
    """build/vmaild with a generated configuration, started as root dropping to user.

    Startup is confirmed through NOTIFY_SOCKET (READY=1), the way systemd sees it;
    every state string vmaild sends is kept in self.notifications.
    """

    def __init__(self, dir, database, socketmap_listen, user="nobody", group="nogroup",
                 notify_abstract=False, wrapper=(), pass_fds=(), **settings):
        self.dir = dir
        self.notify_abstract = notify_abstract
        self.wrapper = list(wrapper)  # e.g. tests/lib/sd_launch.py ... --, which execs vmaild
        self.pass_fds = tuple(pass_fds)  # e.g. listening sockets the test holds (sd_launch --fd)
        os.makedirs(dir, exist_ok=True)
        self.config_path = os.path.join(dir, "vmaild.conf")
        self.log_path = os.path.join(dir, "vmaild.log")
        self.settings = {"database": database, "socketmap_listen": socketmap_listen,
                         "user": user, "group": group, "log_level": "debug"}
        self.settings.update({k: str(v) for k, v in settings.items()})
        self.proc = None
        self.notifications = []
        self._notify = None

    def write_config(self, extra_text=""):
        with open(self.config_path, "w") as f:
            f.write("# written by tests/lib/world.py\n")
            for k, v in self.settings.items():
                f.write("%s = %s\n" % (k, v))
            f.write(extra_text)

    def start(self, timeout=10.0):
        """Start vmaild; again after it stopped, too (a restart: the log is appended to)."""
        self.write_config()
        if self._notify:
            self._notify.close()
            self._log.close()
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if self.notify_abstract:
            # Linux abstract namespace, written "@name" in NOTIFY_SOCKET.
            name = "vmaild-test-%d-%d" % (os.getpid(), id(self))
            self._notify.bind("\0" + name)
            notify_env = "@" + name
        else:
            notify_env = os.path.join(self.dir, "notify.sock")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(notify_env)
            self._notify.bind(notify_env)
            os.chmod(notify_env, 0o777)  # vmaild has dropped privileges when it says STOPPING
        env = dict(os.environ, NOTIFY_SOCKET=notify_env)
        env.pop("VMAILD_TEST_ALLOW_ROOT", None)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrapper + [os.path.join(BUILD, "vmaild"), "-c",
                                                     self.config_path],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     pass_fds=self.pass_fds)
        self.wait_notification("READY=1", timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def wait_notification(self, prefix, timeout=10.0):
        """Block until vmaild sends a state string starting with prefix."""
        deadline = time.monotonic() + timeout
        while True:
            for i, n in enumerate(self.notifications):
                if n.startswith(prefix):
                    del self.notifications[: i + 1]
                    return n
            left = deadline - time.monotonic()
            exited = self.proc.poll() is not None
            self._notify.settimeout(max(0.01, min(left, 0.2)))
            try:
                self.notifications.append(self._notify.recv(4096).decode())
                continue
            except socket.timeout:
                pass
            # Only give up once nothing more is queued: a datagram may outlive its sender.
            if left <= 0 or exited:
                raise RuntimeError("vmaild did not send %s (exit %s); log:\n%s"
                                   % (prefix, self.proc.poll(), self.log()))

    def reload(self, timeout=10.0):
        """SIGHUP; returns once vmaild says READY=1 again."""
        self.proc.send_signal(signal.SIGHUP)
        self.wait_notification("RELOADING=1", timeout)
        self.wait_notification("READY=1", timeout)

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def close(self):
        # A graceful stop, so that a sanitizer build reports leaks at exit; then the log is
        # searched for sanitizer reports, which fail the test that owns this instance.
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._notify:
            self._notify.close()
            self._notify = None
        if self.proc:
            self._log.close()
            report = sanitizer_report(self.log())
            self.proc = None
            if report:
                raise AssertionError("vmaild: sanitizer report in %s:\n%s" % (self.log_path, report))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Postfix:
    """A private Postfix 3.7 instance: own config, queue and data directories.

    smtpd listens on 127.0.0.1:self.port.  main_cf is appended to a minimal
    base configuration (later lines win).  The queue directory's private/ is
    where Postfix's chrooted daemons expect sockets such as private/vmaild.
    """

    BASE_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.invalid
mydomain = test.invalid
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = reject_unauth_destination
maillog_file = {log}
maillog_file_prefixes = {dir}
biff = no
smtputf8_enable = no
"""

    def __init__(self, dir, main_cf="", chroot=True):
        self.dir = dir
        self.conf = os.path.join(dir, "etc")
        self.spool = os.path.join(dir, "spool")
        self.data = os.path.join(dir, "data")
        self.log_path = os.path.join(dir, "postfix.log")
        self.private = os.path.join(self.spool, "private")
        self.port = free_port()
        self.main_cf = main_cf
        self.chroot = chroot
        self.started = False

    def prepare(self):
        """Write the configuration and create the directories; no processes yet."""
        pf = pwd.getpwnam("postfix")
        for d in (self.conf, self.spool, self.data):
            os.makedirs(d, exist_ok=True)
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        os.makedirs(self.private, exist_ok=True)
        os.chown(self.private, pf.pw_uid, 0)
        os.chmod(self.private, 0o700)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(self.BASE_MAIN_CF.format(spool=self.spool, data=self.data,
                                             log=self.log_path, dir=self.dir))
            f.write(self.main_cf)
        with open("/etc/postfix/master.cf") as f:
            master = f.read()
        smtpd = "127.0.0.1:%d inet n - %s - - smtpd" % (self.port, "y" if self.chroot else "n")
        master, n = re.subn(r"(?m)^smtp\s+inet\s.*$", smtpd, master)
        if n != 1:
            raise RuntimeError("no smtp inet line in /etc/postfix/master.cf")
        if not self.chroot:
            master = re.sub(r"(?m)^(\S+\s+(?:unix|inet|fifo|pass|unix-dgram)\s+\S+\s+\S+\s+)y(\s)",
                            r"\1n\2", master)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(master)
        self._register()
        return self

    @staticmethod
    def _ensure_default_main_cf():
        """Debian leaves /etc/postfix/main.cf absent with 'No configuration'."""
        if os.path.exists(POSTFIX_MAIN_CF):
            return
        with open("/usr/share/postfix/main.cf.dist") as f:
            text = f.read()
        # The template's empty "name =" lines are placeholders Postfix refuses.
        text = re.sub(r"(?m)^([a-z_]+) =\s*$", r"#\1 =", text)
        tmp = POSTFIX_MAIN_CF + ".tmp%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, POSTFIX_MAIN_CF)

    def _alternates(self):
        out = subprocess.run(["postconf", "-h", "alternate_config_directories"],
                             capture_output=True, text=True, check=True).stdout
        return [d for d in re.split(r"[\s,]+", out.strip()) if d]

    def _register(self):
        """List our config dir in the default instance's alternate_config_directories."""
        self._ensure_default_main_cf()
        dirs = self._alternates()
        if self.conf not in dirs:
            subprocess.run(["postconf", "-e", "alternate_config_directories = "
                            + " ".join(dirs + [self.conf])], check=True)

    def _unregister(self):
        dirs = self._alternates()
        if self.conf in dirs:
            dirs.remove(self.conf)
            subprocess.run(["postconf", "-e", "alternate_config_directories = "
                            + " ".join(dirs)], check=True)

    def start(self):
        if not os.path.exists(os.path.join(self.conf, "main.cf")):
            self.prepare()
        r = subprocess.run(["postfix", "-c", self.conf, "start"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: %s%s\n%s" % (r.stdout, r.stderr,
                                                                   self.log()))
        self.started = True

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for("Postfix smtpd on port %d" % self.port, listening)
        return self

    def smtp(self):
        """An SMTP client connected to this instance's smtpd (greeting read)."""
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test.invalid",
                            timeout=60)

    def postmap_q(self, key, table):
        """postmap -q KEY TABLE run from the queue directory, as Postfix daemons resolve
        relative socket paths.  Returns (exit status, stdout, stderr)."""
        r = subprocess.run(["postmap", "-c", self.conf, "-q", key, table], cwd=self.spool,
                           capture_output=True, text=True)
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.started:
            subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True)
            self.started = False

    def close(self):
        self.stop()
        with contextlib.suppress(Exception):
            self._unregister()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class World:
    """The temporary directory plus everything started in it, closed in reverse order."""

    def __init__(self, name="vmail-e2e"):
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self._stack = contextlib.ExitStack()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def postgres(self, schema=True):
        pg = self._stack.enter_context(Postgres(self.path("pg")))
        pg.start()
        if schema:
            conf = self.path("vmailctl.conf")
            with open(conf, "w") as f:
                f.write("database = %s\n" % pg.dsn)
            pg.apply_schema(conf)
        return pg

    def vmailctl(self, *args, stdin=None):
        """Run build/vmailctl against this world's database (after postgres()); its stdout.
        A non-zero exit raises, with what vmailctl said."""
        env = dict(os.environ, VMAIL_PWHASH_COST="test")
        r = subprocess.run([os.path.join(BUILD, "vmailctl"), "-c", self.path("vmailctl.conf"), *args],
                           input=stdin, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError("vmailctl %s: %s%s" % (args, r.stdout, r.stderr))
        return r.stdout

    def vmaild(self, database, socketmap_listen, **settings):
        vd = self._stack.enter_context(Vmaild(self.path("vmaild"), database, socketmap_listen,
                                              **settings))
        return vd.start()

    def postfix(self, main_cf="", chroot=True, start=True):
        pf = self._stack.enter_context(Postfix(self.path("postfix"), main_cf, chroot))
        pf.prepare()
        return pf.start() if start else pf

    def close(self):
        try:
            self._stack.close()
        finally:
            if os.environ.get("VMAIL_KEEP_WORLD") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def dovecot_version():
    """The installed Dovecot's version, e.g. (2, 4, 1); None if there is none."""
    global _dovecot_version
    if _dovecot_version is None and shutil.which("dovecot"):
        r = subprocess.run(["dovecot", "--version"], capture_output=True, text=True)
        m = re.match(r"(\d+)\.(\d+)\.(\d+)", r.stdout)
        _dovecot_version = tuple(int(x) for x in m.groups()) if m else None
    return _dovecot_version


_dovecot_version = None


class Dovecot:
    """A private Dovecot 2.3 or 2.4 instance: own base_dir, state_dir and log, IMAP on
    127.0.0.1:self.imap_port, LMTP on the unix socket self.lmtp_path, and an auth-client
    socket (self.auth_client) for Postfix SMTP AUTH.  conf is appended to a minimal base
    configuration (passdb, userdb, quota and plugins come from it, e.g. from contrib).
    On 2.4 the base starts with the version lines 2.4 requires and includes the
    distribution's own conf.d/10-mail.conf, as an installed Dovecot has it: on Debian 13 it
    sets mbox with an INBOX in /var/mail, which the userdb's answer must override.
    """

    BASE_CONF = """\
instance_name = {name}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
mail_debug = no
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener {dir}/lmtp {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener {dir}/auth-client {{
    mode = 0666
  }}
}}
"""

    def __init__(self, dir, conf=""):
        self.dir = dir
        self.conf = conf
        self.path = os.path.join(dir, "dovecot.conf")
        self.imap_port = free_port()
        self.lmtp_path = os.path.join(dir, "lmtp")
        self.auth_client = os.path.join(dir, "auth-client")
        self.log_path = os.path.join(dir, "dovecot.log")
        self.name = "vmt%d-%d" % (os.getpid(), self.imap_port)
        self.version = dovecot_version() or (0, 0, 0)
        self.started = False

    STOCK_MAIL_CONF = "/etc/dovecot/conf.d/10-mail.conf"

    def base_conf(self):
        base = self.BASE_CONF.format(name=self.name, dir=self.dir, imap_port=self.imap_port)
        if self.version < (2, 4):
            return base
        v = "%d.%d.%d" % self.version
        base = base.replace("disable_plaintext_auth = no", "auth_allow_cleartext = yes")
        stock = ("!include %s\n" % self.STOCK_MAIL_CONF
                 if os.path.exists(self.STOCK_MAIL_CONF) else "")
        return ("dovecot_config_version = %s\ndovecot_storage_version = %s\n%s%s"
                % (v, v, stock, base))

    def prepare(self):
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        with open(self.path, "w") as f:
            f.write(self.base_conf())
            f.write(self.conf)
        return self

    def start(self):
        if not os.path.exists(self.path):
            self.prepare()
        # Not through pipes: the daemonized master keeps them open (start would never return).
        out_path = os.path.join(self.dir, "dovecot.start")
        with open(out_path, "w") as out:
            r = subprocess.run(["dovecot", "-c", self.path], stdout=out, stderr=out)
        if r.returncode != 0:
            with open(out_path) as f:
                raise RuntimeError("dovecot start failed: %s\n%s" % (f.read(), self.log()))
        self.started = True

        def listening():
            with socket.socket() as s:
                return (s.connect_ex(("127.0.0.1", self.imap_port)) == 0
                        and os.path.exists(self.lmtp_path))
        wait_for("Dovecot IMAP on port %d" % self.imap_port, listening)
        return self

    def doveadm(self, *args, check=False):
        """doveadm -c FILE ARGS; the CompletedProcess (text)."""
        return subprocess.run(["doveadm", "-c", self.path, *args], capture_output=True,
                              text=True, check=check, timeout=60)

    def auth_test(self, user, password, service="imap"):
        """True if doveadm auth test succeeds."""
        r = self.doveadm("auth", "test", "-x", "service=" + service, user, password)
        return r.returncode == 0 and "auth succeeded" in r.stdout + r.stderr

    def user_fields(self, user):
        """doveadm user USER as a dict of fields, or (returncode, output) on failure."""
        r = self.doveadm("user", user)
        if r.returncode != 0:
            return r.returncode, r.stdout + r.stderr
        fields = {}
        for line in r.stdout.splitlines():
            parts = line.split(None, 1)
            if parts:
                fields[parts[0]] = parts[1] if len(parts) > 1 else ""
        return fields

    def imap(self):
        import imaplib
        return imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)

    def lmtp(self):
        return smtplib.LMTP(self.lmtp_path, timeout=150)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.started:
            subprocess.run(["doveadm", "-c", self.path, "stop"], capture_output=True)
            self.started = False

    def close(self):
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class UnixUsers:
    """Throw-away Unix users (with groups of the same name) for Dovecot's setuid, named
    vmt<pid><letter>, deleted by close().  self.made: name -> (uid, gid, home)."""

    def __init__(self, home_base):
        self.home_base = home_base
        self.made = {}

    def add(self, tag):
        name = "vmt%d%s" % (os.getpid() % 100000, tag)
        home = os.path.join(self.home_base, name)
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", home, "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        os.makedirs(home, exist_ok=True)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)
        self.made[name] = (pw.pw_uid, pw.pw_gid, home)
        return name, pw.pw_uid, pw.pw_gid, home

    def close(self):
        for name in list(self.made):
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)
            del self.made[name]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _world_dovecot(self, conf="", start=True):
    """World.dovecot: a Dovecot instance in <world>/dovecot, stopped at close()."""
    dc = self._stack.enter_context(Dovecot(self.path("dovecot"), conf))
    dc.prepare()
    return dc.start() if start else dc


def contrib(*path):
    """The text of contrib/PATH... as shipped."""
    with open(os.path.join(REPO, "contrib", *path)) as f:
        return f.read()


def contrib_replace(text, old, new, what, count=1):
    """text with old replaced by new; fails loudly unless old occurs exactly count times
    (a contrib file that changed under a test must not pass by substituting nothing)."""
    if text.count(old) != count:
        raise AssertionError("contrib %s: expected %d of %r" % (what, count, old))
    return text.replace(old, new)


def contrib_vmaild_conf(*readme):
    """The vmaild.conf lines a contrib README asks for: its fenced block that starts with
    "# /etc/vmaild/vmaild.conf", as [(key, value)] in file order (comments dropped)."""
    text = contrib(*readme)
    m = re.search(r"```\n# /etc/vmaild/vmaild\.conf[^\n]*\n(.*?)```", text, re.S)
    if not m:
        raise AssertionError("contrib %s: no vmaild.conf block" % "/".join(readme))
    pairs = []
    for line in m.group(1).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise AssertionError("contrib %s: not key = value: %r" % ("/".join(readme), line))
            pairs.append((key.strip(), value.strip()))
    return pairs


def _world_dovecot_sql(self, dsn, quota_socket, start=True, extra=""):
    """World.dovecot_sql: Dovecot on the SQL path with the contrib files of the installed
    release as shipped (contrib/dovecot/2.3 or 2.4): passdb and userdb through the sql
    driver and the schema's functions, the count quota, quota_clone to quota_socket.  Only
    the database connection, the socket path and file paths are replaced.  extra is
    appended (more contrib files)."""
    if (dovecot_version() or (0, 0)) < (2, 4):
        ext = self.path("dovecot-sql.conf.ext")
        text = contrib("dovecot", "2.3", "dovecot-sql.conf.ext")
        text = contrib_replace(text, "connect = host=/run/postgresql dbname=vmail user=dovecot",
                        "connect = " + dsn, "2.3/dovecot-sql.conf.ext")
        with open(ext, "w") as f:
            f.write(text)
        conf = contrib("dovecot", "2.3", "90-vmaild-sql.conf")
        conf = contrib_replace(conf, "/etc/dovecot/dovecot-sql.conf.ext", ext, "2.3/90-vmaild-sql.conf", 2)
    else:
        params = dict(kv.split("=", 1) for kv in dsn.split())
        host = params.pop("host")
        conf = contrib("dovecot", "2.4", "auth-vmaild-sql.conf.ext")
        conf = contrib_replace(conf, "pgsql /run/postgresql {", "pgsql %s {" % host,
                        "2.4/auth-vmaild-sql.conf.ext")
        conf = contrib_replace(conf, "    dbname = vmail\n    user = dovecot\n",
                        "".join("    %s = %s\n" % kv for kv in params.items()),
                        "2.4/auth-vmaild-sql.conf.ext")
        conf += contrib("dovecot", "2.4", "90-vmaild-quota.conf")
    # The setting and the comment that tells vmaild.conf the same path.
    conf = contrib_replace(conf, "/run/vmaild/dict-quota", quota_socket, "dovecot SQL path", 2)
    return self.dovecot(conf + extra, start=start)


def _world_unix_users(self):
    """World.unix_users: a UnixUsers whose homes live in <world>/home, removed at close()."""
    os.makedirs(self.path("home"), exist_ok=True)
    return self._stack.enter_context(UnixUsers(self.path("home")))


World.dovecot = _world_dovecot
World.dovecot_sql = _world_dovecot_sql
World.unix_users = _world_unix_users
