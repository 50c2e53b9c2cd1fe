"""pgsql: the private PostgreSQL of the test run, and psql as a client (standard library only).

The test runner starts one server (tests/world/pg.sh) and exports VMAIL_TEST_PGDIR; a test
run by hand without it gets a server of its own, stopped at exit.  Each test takes a fresh
database cloned from a template that holds the migrated schema.
"""
import atexit
import os
import subprocess
import tempfile
import threading

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PG_SH = os.path.join(REPO, "tests", "world", "pg.sh")
TEMPLATE = "vmail_template"
_lock = threading.RLock()
_state = {"dir": None, "template": False}


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
            atexit.register(lambda: subprocess.run([PG_SH, "stop", d], capture_output=True))
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


def apply_schema(db):
    """Apply schema/NNN_*.sql in order, each in its own transaction."""
    for name in sorted(f for f in os.listdir(os.path.join(REPO, "schema")) if f.endswith(".sql")):
        r = _psql(db, "", ("-1", "-f", os.path.join(REPO, "schema", name)))
        if r.returncode != 0:
            raise RuntimeError(f"{name}: {r.stderr}")


def fresh_database(name):
    """Drop and re-create database name as a copy of the migrated template."""
    server_up()
    with _lock:
        if not _state["template"]:
            query("postgres", f"DROP DATABASE IF EXISTS {TEMPLATE}")
            query("postgres", f"CREATE DATABASE {TEMPLATE}")
            apply_schema(TEMPLATE)
            _state["template"] = True
        query("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        query("postgres", f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return name
