"""Golden test of every lookup function: tests/fixtures/lookups-golden.tsv says, for the world
tests/fixtures/lookups-world.sql, what each lookup answers for each key today.

Each call is made the way its real caller makes it: vmaild's statement text
(src/vmaild/lookup_kinds.c), Dovecot's sql driver queries (contrib/dovecot/2.3/dovecot-sql.conf.ext,
contrib/dovecot/2.4/auth-vmaild-sql.conf.ext),
vmailctl's; CallsAsCallersMakeThemTest checks the first two against those files. Rows run in
file order on one database, so a write (a quota commit) shows in the rows after it. Every
mismatching row is reported, not only the first. The table may name only the calls below, and
every lookup function of the schema (LOOKUP_FUNCTIONS) must have a row, so a new one cannot
slip in untested.

Table format: '#' lines are comments; fields are separated by one or more TABs:
    call  key  more  answer  comment
key is the first argument, written "<empty>" for the empty string and "<a*1100>" for 1100
a's; more holds the other arguments, space-separated ("-" for none). answer: "(null)" for
NULL, "(none)" for no rows, "(empty)" for an empty string, a TAB inside a value as "\\t";
row sets as "column=value ..." per row, rows joined by " ; ".

VMAIL_GOLDEN_WRITE=FILE also writes the table with today's answers to FILE (to review a
deliberate change of behaviour with diff; the test still fails on every mismatch).
"""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402

FIXTURES = os.path.join(pgsql.REPO, "tests", "fixtures")
WORLD = os.path.join(FIXTURES, "lookups-world.sql")
GOLDEN = os.path.join(FIXTURES, "lookups-golden.tsv")

# call -> (statement with $1.. as its caller sends it, shape, schema functions it covers)
CALLS = {
    # vmaild (src/vmaild/lookup_kinds.c): socketmap, dict, policy.  The scalar lookup_* functions
    # (for psql) run the same query: tests/sql/test_route.py checks that they agree.
    "lookup_domain": ("SELECT (SELECT v FROM vmail.route_domain($1) v)", "value", {"route_domain", "lookup_domain"}),
    "lookup_alias": ("SELECT (SELECT v FROM vmail.route_alias($1) v)", "value", {"route_alias", "lookup_alias"}),
    "lookup_mailbox": ("SELECT (SELECT v FROM vmail.route_mailbox($1) v)", "value", {"route_mailbox", "lookup_mailbox"}),
    "lookup_sender": ("SELECT (SELECT v FROM vmail.route_sender($1) v)", "value", {"route_sender", "lookup_sender"}),
    "passdb_json": ("SELECT (SELECT v FROM vmail.passdb_dict($1) v)", "value", {"passdb_dict", "passdb_json"}),
    "userdb_json": ("SELECT (SELECT v FROM vmail.userdb_dict($1) v)", "value", {"userdb_dict", "userdb_json"}),
    "userdb_list": ("SELECT * FROM vmail.userdb_list()", "rows", {"userdb_list"}),
    "quota_get": ("SELECT vmail.quota_get($1,$2,$3)", "value", {"quota_get"}),
    "quota_apply": ("SELECT vmail.quota_apply($1,$2::bigint,$3::bigint)::text", "value", {"quota_apply"}),
    "quota_set": ("SELECT vmail.quota_set($1,$2::bigint,$3::bigint)::text", "value", {"quota_set"}),
    "quota_unset": ("SELECT vmail.quota_unset($1)::text", "value", {"quota_unset"}),
    "policy_check": ("SELECT vmail.policy_check($1,$2::bigint)", "value", {"policy_check"}),
    "dict_quota_get": ("SELECT vmail.dict_quota_get($1,$2,$3,$4::integer)", "value", {"dict_quota_get"}),
    "dict_commit": ("SELECT vmail.dict_commit($1::text[],$2::text[],$3::bigint[],$4::text[],$5::bigint[],"
                    "$6::integer[])", "value", {"dict_commit"}),
    "dict_sieve_get": ("SELECT vmail.dict_sieve_get($1,$2,$3::integer)", "value", {"dict_sieve_get"}),
    # Dovecot 2.3's sql driver (contrib/dovecot/2.3/dovecot-sql.conf.ext)
    "password_query": ("SELECT username AS user, password FROM vmail.passdb($1)", "rows", {"passdb"}),
    "user_query": ("SELECT username AS user, home, mail, uid, gid, quota_rule, tempfail"
                   " FROM vmail.userdb_effective($1)", "rows", {"userdb_effective"}),
    "iterate_query": ("SELECT login AS user FROM vmail.userdb_list() AS login", "rows", {"userdb_list"}),
    # Dovecot 2.4's (contrib/dovecot/2.4/auth-vmaild-sql.conf.ext; passdb and iterate as above)
    "user_query_v24": ("SELECT username AS user, home, uid, gid, mail_driver, mail_path, mail_inbox_path,"
                       " mail_index_path, mail_control_path, mailbox_list_layout, quota_storage_size,"
                       " tempfail FROM vmail.userdb_v24($1)", "rows", {"userdb_v24"}),
    # under user_query_v24: a settings' mail location (key) for a home (more) in 2.4's names
    "mail_location_v24": ("SELECT row_to_json(l)::text FROM vmail.mail_location_v24($1, $2) l", "value", set()),
    # the two-quota-root userdb (docs/sql-api.md), under userdb_json
    "userdb": ("SELECT * FROM vmail.userdb($1)", "rows", {"userdb"}),
    # vmailctl usage show (src/vmailctl/ctl_usage.c)
    "quota_state": ("SELECT * FROM vmail.quota_state($1)", "rows", {"quota_state"}),
    # vmaild's recount list after quota commits answered F (src/vmaild/dict_recount.c)
    "usage_recount_add": ("SELECT vmail.usage_recount_add($1::text[],$2::text[],$3::integer[])", "value",
                          set()),
    # under dict_quota_get and dict_commit
    "dict_peer_may": ("SELECT vmail.dict_peer_may($1,$2::integer)", "value", {"dict_peer_may"}),
}

# Every call runs with the rights its caller has: vmaild and Dovecot's sql driver log in as a
# member of vmail_lookup (schema/grants.sql), so a function they call that the role may not
# execute fails here as it would in production (the suites' servers run as a superuser).
# CALLER_ROLE is such a member; the calls in OWNER_CALLS are vmailctl's, made as the owner.
CALLER_ROLE = "vmail_golden_caller"
OWNER_CALLS = {"quota_state"}
CREATE_CALLER = f"""
DO $$
BEGIN
	CREATE ROLE {CALLER_ROLE} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
	NULL;  -- roles are cluster-wide: another database's run created it
END $$;
GRANT vmail_lookup TO {CALLER_ROLE};
"""

# A row set's value with these characters is written as a JSON string.
NEEDS_QUOTES = r'[ ;"]'

# The schema's lookup functions, which the table must cover.
LOOKUP_FUNCTIONS = r"^(lookup_|passdb|userdb|policy_|quota|dict_)"

# Runs one call; its answer as JSON rows, or the error. A failed call rolls back alone.
HELPER = r"""
CREATE FUNCTION pg_temp.golden(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE 'SELECT json_agg(x)::text FROM (' || q || ') x' INTO r;
	RETURN replace(coalesce(r, '[]'), E'\n', '');
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE || ': ' || replace(SQLERRM, E'\n', ' ');
END $f$;
"""


class Row:
    def __init__(self, lineno, fields):
        self.lineno = lineno
        self.call, self.key, self.more, self.answer, self.comment = fields
        self.actual = None

    def args(self):
        key = re.sub(r"<(.)\*(\d+)>", lambda m: m.group(1) * int(m.group(2)), self.key)
        key = "" if key == "<empty>" else key
        more = [] if self.more == "-" else self.more.split(" ")
        return [key] + more

    def where(self):
        return f"line {self.lineno}: {self.call} {self.key[:60]} {self.more}".rstrip()


def read_table(path):
    """(rows, problems): the table's rows, and lines that are not well-formed rows."""
    rows, problems = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = re.split(r"\t+", line)
            if len(fields) != 5:
                problems.append(f"line {n}: {len(fields)} fields, not 5 (call key more answer comment)")
                continue
            rows.append(Row(n, fields))
    return rows, problems


def literal(s):
    return "'" + s.replace("'", "''") + "'"


def statement(row):
    text, _, _ = CALLS[row.call]
    nparams = len(set(re.findall(r"\$(\d+)", text)))
    args = [] if nparams == 0 and row.key == "-" and row.more == "-" else row.args()
    if len(args) != nparams:
        return None
    return re.sub(r"\$(\d+)", lambda m: literal(args[int(m.group(1)) - 1]), text)


def show(v):
    if v is None:
        return "(null)"
    if isinstance(v, bool):
        return "t" if v else "f"
    v = str(v)
    return "(empty)" if v == "" else v.replace("\t", "\\t").replace("\n", "\\n")


def render(shape, answer, known=()):
    """The table's spelling of a call's answer (JSON rows from pg_temp.golden), leaving out
    the rows in known (there before the world was seeded)."""
    if answer.startswith("ERROR "):
        return answer
    rows = [r for r in json.loads(answer) if json.dumps(r, sort_keys=True) not in known]
    if shape == "value":
        if len(rows) != 1 or len(rows[0]) != 1:
            return f"(not one value: {answer})"
        return show(next(iter(rows[0].values())))
    if not rows:
        return "(none)"

    def field(k, v):
        s = show(v)
        return f"{k}={json.dumps(s)}" if re.search(NEEDS_QUOTES, s) else f"{k}={s}"
    return " ; ".join(" ".join(field(k, v) for k, v in r.items()) for r in rows)


def run_table(db, rows, before=None):
    """Run every row with a known call, in order, on db; fill row.actual.  before maps a
    statement to the rows it answered before the world was seeded (see preexisting)."""
    script = [CREATE_CALLER, HELPER]
    todo = []
    for row in rows:
        if row.call not in CALLS:
            continue
        sql = statement(row)
        if sql is None:
            row.actual = f"(wrong number of arguments for {row.call})"
            continue
        call = f"SELECT {len(todo)} || chr(9) || pg_temp.golden({literal(sql)});"
        if row.call not in OWNER_CALLS:
            call = f"SET ROLE {CALLER_ROLE}; {call} RESET ROLE;"
        script.append(call)
        todo.append(row)
    out = pgsql.query(db, "\n".join(script)) if todo else ""
    lines = [line for line in out.split("\n") if line]
    if len(lines) != len(todo):
        raise RuntimeError(f"{len(todo)} calls, {len(lines)} answers:\n{out[-2000:]}")
    for line in lines:
        i, answer = line.split("\t", 1)
        row = todo[int(i)]
        known = (before or {}).get(statement(row), ())
        row.actual = render(CALLS[row.call][1], answer, known)


def preexisting(db, rows):
    """What the listing calls (shape "rows") answer on db before the world is seeded: empty
    on a fresh schema; the fixture's accounts on one upgraded from tests/fixtures/schema-v11.sql
    (VMAIL_TEST_SCHEMA=upgrade).  Those rows are not part of the golden answers."""
    before = {}
    for row in rows:
        if row.call not in CALLS or CALLS[row.call][1] != "rows":
            continue
        sql = statement(row)
        if sql is None or sql in before:
            continue
        out = pgsql.query(db, HELPER + f"\nSELECT pg_temp.golden({literal(sql)});").strip()
        answer = out.split("\n")[-1]
        if not answer.startswith("ERROR "):
            before[sql] = {json.dumps(r, sort_keys=True) for r in json.loads(answer)}
    return before


def write_table(src, dst, rows):
    """src with every row's answer replaced by today's, columns aligned to tab stops."""
    by_line = {r.lineno: r for r in rows}
    caps = [24, 32, 24, 32]  # a longer field pushes only its own row's next columns
    widths = [0, 0, 0, 0]
    for r in rows:
        cols = [r.call, r.key, r.more, r.actual if r.actual is not None else r.answer]
        widths = [max(w, len(c) if len(c) < cap else 0) for w, c, cap in zip(widths, cols, caps)]
    stops = [(w // 8 + 1) * 8 for w in widths]
    with open(src) as f, open(dst, "w") as out:
        for n, line in enumerate(f, 1):
            r = by_line.get(n)
            if r is None:
                out.write(line)
                continue
            cols = [r.call, r.key, r.more, r.actual if r.actual is not None else r.answer]
            text = ""
            for c, stop in zip(cols, stops):
                text += c + "\t" * max(1, -(-(stop - len(c)) // 8))
            out.write(text + r.comment + "\n")


class LookupsGoldenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rows, cls.problems = read_table(GOLDEN)
        cls.db = pgsql.fresh_database("lookups_golden")
        before = preexisting(cls.db, cls.rows)
        with open(WORLD) as f:
            pgsql.query(cls.db, f.read())
        run_table(cls.db, cls.rows, before)
        if os.environ.get("VMAIL_GOLDEN_WRITE"):
            write_table(GOLDEN, os.environ["VMAIL_GOLDEN_WRITE"], cls.rows)

    def test_every_row_answers_as_today(self):
        bad = [f"{r.where()}\n    expected: {r.answer}\n    actual:   {r.actual}\n    ({r.comment})"
               for r in self.rows if r.call in CALLS and r.actual != r.answer]
        if bad:
            self.fail(f"{len(bad)} of {len(self.rows)} rows differ:\n" + "\n".join(bad))

    def test_table_names_only_known_calls(self):
        bad = self.problems + [f"{r.where()}: unknown call {r.call!r} (known: {', '.join(sorted(CALLS))})"
                               for r in self.rows if r.call not in CALLS]
        if bad:
            self.fail("\n".join(bad))

    def test_every_lookup_function_has_rows(self):
        names = pgsql.query(self.db, "SELECT DISTINCT p.proname FROM pg_proc p"
                            " JOIN pg_namespace n ON n.oid = p.pronamespace"
                            f" WHERE n.nspname = 'vmail' AND p.proname ~ '{LOOKUP_FUNCTIONS}'"
                            " ORDER BY 1").split("\n")
        self.assertIn("lookup_alias", names)
        covered = set()
        for r in self.rows:
            if r.call in CALLS:
                covered |= CALLS[r.call][2]
        missing = [n for n in names if n not in covered]
        if missing:
            self.fail("lookup functions without a row in the golden table (add a call to CALLS and"
                      " rows to lookups-golden.tsv): " + ", ".join(missing))


class CallsAsCallersMakeThemTest(unittest.TestCase):
    """CALLS holds the statements vmaild and Dovecot really send, so the rows test those."""

    def norm(self, q):
        return re.sub(r"\s+", " ", q).strip()

    def test_vmaild_statements(self):
        with open(os.path.join(pgsql.REPO, "src", "vmaild", "lookup_kinds.c")) as f:
            sent = re.findall(r'\{ "vmail_\w+", "(SELECT [^"]*)"', f.read())
        self.assertGreater(len(sent), 10)
        ours = {self.norm(c[0]) for c in CALLS.values()}
        missing = [q for q in sent if self.norm(q) not in ours]
        if missing:
            self.fail("vmaild sends statements the golden table does not test: " + "; ".join(missing))

    def test_dovecot_sql_queries(self):
        with open(os.path.join(pgsql.REPO, "contrib", "dovecot", "2.3", "dovecot-sql.conf.ext")) as f:
            text = f.read().replace("\\\n", " ")
        for name in ("password_query", "user_query", "iterate_query"):
            m = re.search(rf"(?m)^{name} = (.*)$", text)
            self.assertIsNotNone(m, name)
            self.assertEqual(self.norm(m.group(1).replace("'%u'", "$1")), self.norm(CALLS[name][0]), name)

    def test_dovecot24_sql_queries(self):
        with open(os.path.join(pgsql.REPO, "contrib", "dovecot", "2.4", "auth-vmaild-sql.conf.ext")) as f:
            text = f.read().replace("\\\n", " ")
        for block, name, call in (("passdb", "query", "password_query"), ("userdb", "query", "user_query_v24"),
                                  ("userdb", "iterate_query", "iterate_query")):
            m = re.search(rf"(?ms)^{block} sql {{.*?^\s*{name} = (.*?)$", text)
            self.assertIsNotNone(m, (block, name))
            self.assertEqual(self.norm(m.group(1).replace("'%{user}'", "$1")), self.norm(CALLS[call][0]),
                             (block, name))


def setUpModule():
    pgsql.server_up()


if __name__ == "__main__":
    unittest.main()
