"""pgsql: the private PostgreSQL of the test run, and psql as a client (standard library only).

The test runner starts one server (tests/world/pg.sh) and exports VMAIL_TEST_PGDIR; a test
run by hand without it gets a server of its own, stopped at exit.  Each test takes a fresh
database cloned from a template that holds the migrated schema.

VMAIL_TEST_SCHEMA=upgrade makes that template the way an installation upgrades instead of
the way one starts: tests/fixtures/schema-v11.sql (a version-11 database with data, made by
the old versioned-only migrations) restored, then "vmailctl db migrate".  The fixture's names
(customer legacy, domains legacy-*.pl, logins old*) stay out of the suites' way.
"""
import atexit
import os
import shutil
import subprocess
import tempfile
import threading

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PG_SH = os.path.join(REPO, "tests", "world", "pg.sh")
SCHEMA = os.path.join(REPO, "schema")
FIXTURE = os.path.join(REPO, "tests", "fixtures", "schema-v11.sql")
BUILD = os.environ.get("VMAIL_BUILD_DIR", os.path.join(REPO, "build"))
VMAILCTL = os.path.join(BUILD, "vmailctl")
MODE = os.environ.get("VMAIL_TEST_SCHEMA", "fresh")
if MODE not in ("fresh", "upgrade"):
    raise RuntimeError(f"VMAIL_TEST_SCHEMA={MODE}: fresh or upgrade")
TEMPLATE = "vmail_template" if MODE == "fresh" else "vmail_template_upgrade"
_lock = threading.RLock()
_state = {"dir": None, "template": False}


def _remove_own_server(base, d):
    """At exit: stop the server this process started, and remove its directory."""
    subprocess.run([PG_SH, "stop", d], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def server_up():
    """Start (or reuse) the server; returns its directory."""
    with _lock:
        if _state["dir"]:
            return _state["dir"]
        d = os.environ.get("VMAIL_TEST_PGDIR")
        if not d:
            base = tempfile.mkdtemp(prefix="vmail-pg-", dir="/tmp")
            os.chmod(base, 0o755)
            d = os.path.join(base, "pg")
            atexit.register(_remove_own_server, base, d)
        subprocess.run([PG_SH, "start", d], check=True, capture_output=True)
        _state["dir"] = d
        return d


def socket_dir():
    return os.path.join(server_up(), "sock")


def dsn(db):
    return f"host={socket_dir()} dbname={db} user=postgres"


def _psql(db, sql, extra=()):
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
           "-h", socket_dir(), "-U", "postgres", "-d", db, *extra]
    return subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=120)


def query(db, sql):
    """Run sql; return its output (rows joined by newlines, columns by '|'); raise on error."""
    r = _psql(db, sql)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}\n{r.stderr}")
    return r.stdout.strip()


def error(db, sql):
    """Run sql; return None on success, else the error text (with its SQLSTATE)."""
    r = _psql(db, sql)
    return None if r.returncode == 0 else r.stderr.strip()


SELF_HASH = "{SHA512-CRYPT}$6$selftest$notarealhash"


def self_token(db, login):
    """A self-service session token for login (vmail.self_login), giving it a password hash
    first if it has none: the self_* functions take a token, not a login."""
    query(db, f"UPDATE vmail.shell_account SET password = '{SELF_HASH}' WHERE login = '{login}' AND password IS NULL")
    pw = query(db, f"SELECT password FROM vmail.shell_account WHERE login = '{login}'")
    tok = query(db, f"SELECT vmail.self_login('{login}', '{pw}', NULL, 3600)")
    if not tok:
        raise RuntimeError(f"self_login {login} failed")
    return tok


def migrate(db):
    """vmailctl db migrate on db; returns what it printed."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write(f"database = {dsn(db)}\n")
        conf.flush()
        env = {k: v for k, v in os.environ.items() if k not in ("VMAIL_SCHEMA_DIR", "VMAIL_CONFIG")}
        r = subprocess.run([VMAILCTL, "-c", conf.name, "--schema-dir", SCHEMA, "db", "migrate"],
                           capture_output=True, text=True, timeout=300, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"vmailctl db migrate on {db}: {r.stderr}")
    return r.stdout


def schema_files():
    """The schema files in the order vmailctl applies them to an empty database."""
    names = [f for f in os.listdir(SCHEMA) if f.endswith(".sql")]
    first = [f for f in names if f == "R_valid.sql"]
    versioned = sorted((f for f in names if f[0].isdigit()), key=lambda f: int(f.split("_")[0]))
    repeatable = sorted(f for f in names if f.startswith("R_") and f not in first)
    return first + versioned + repeatable + [f for f in names if f == "grants.sql"]


def apply_schema(db):
    """A fresh schema: vmailctl db migrate when vmailctl is built, else the files through psql
    in vmailctl's order, in one transaction (no bookkeeping: enough for plain SQL suites)."""
    if os.access(VMAILCTL, os.X_OK):
        migrate(db)
        return
    args = ["-1", "-c", "SET check_function_bodies = off"]
    for name in schema_files():
        args += ["-f", os.path.join(SCHEMA, name)]
    r = _psql(db, "", args)
    if r.returncode != 0:
        raise RuntimeError(f"schema: {r.stderr}")


def restore_fixture(db):
    """Load tests/fixtures/schema-v11.sql into the empty database db."""
    r = _psql(db, "", ("-f", FIXTURE))
    if r.returncode != 0:
        raise RuntimeError(f"{FIXTURE}: {r.stderr}")


def build_schema(db):
    """The schema of the run's mode (VMAIL_TEST_SCHEMA) in the empty database db."""
    if MODE == "fresh":
        apply_schema(db)
        return
    if not os.access(VMAILCTL, os.X_OK):
        raise RuntimeError(f"VMAIL_TEST_SCHEMA=upgrade needs vmailctl at {VMAILCTL} (set VMAIL_BUILD_DIR)")
    restore_fixture(db)
    migrate(db)


def fresh_database(name):
    """Drop and re-create database name as a copy of the migrated template."""
    server_up()
    with _lock:
        if not _state["template"]:
            query("postgres", f"DROP DATABASE IF EXISTS {TEMPLATE}")
            query("postgres", f"CREATE DATABASE {TEMPLATE}")
            build_schema(TEMPLATE)
            _state["template"] = True
        query("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        query("postgres", f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return name
