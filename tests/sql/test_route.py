"""The routing relation vmail.route (schema/015_route.sql, schema/R_route.sql).

RebuildTest: after the golden world (tests/fixtures/lookups-world.sql) went in through the
triggers, and after changes to every table and setting the rows depend on, the trigger-kept
relation equals what vmail.route_rebuild() computes from the base tables.
PlanTest: the lookups as vmaild sends them (src/vmaild/lookup_kinds.c), planned as a member
of vmail_lookup with EXPLAIN (FORMAT JSON): index scans on vmail.route only, no function scan, no other relation (sequential scans off:
the test world is a few rows, where a sequential scan is cheaper; a function scan or another
relation would still show).
"""
import concurrent.futures
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_lookups import CALLS, GOLDEN, literal, read_table  # noqa: E402

WORLD = os.path.join(pgsql.REPO, "tests", "fixtures", "lookups-world.sql")

# A relation's rows as text, sorted, and after its rebuild: '' when equal, else both.
COMPARE = """
CREATE TEMP TABLE kept AS SELECT * FROM vmail.{rel};
SELECT vmail.{rel}_rebuild();
SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM (
	(SELECT 'kept only: ' || k::text FROM kept k EXCEPT SELECT 'kept only: ' || r::text FROM vmail.{rel} r)
	UNION ALL
	(SELECT 'rebuild only: ' || r::text FROM vmail.{rel} r EXCEPT SELECT 'rebuild only: ' || k::text FROM kept k)
) d(x);
DROP TABLE kept;
"""

CALLER = "vmail_route_caller"


def differences(db):
    return "\n".join(pgsql.query(db, COMPARE.format(rel=rel)).split("\n", 1)[-1].strip()
                     for rel in ("route", "login")).strip()


class RebuildTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = pgsql.fresh_database("route_rebuild")
        with open(WORLD) as f:
            pgsql.query(cls.db, f.read())

    def test_world_as_loaded(self):
        self.assertGreater(int(pgsql.query(self.db, "SELECT count(*) FROM vmail.route WHERE kind <> 'domain'")), 10)
        self.assertGreater(int(pgsql.query(self.db, "SELECT count(*) FROM vmail.login")), 10)
        self.assertEqual(differences(self.db), "")

    def change_then_compare(self, sql):
        pgsql.query(self.db, "BEGIN;\n" + sql + ";\nCOMMIT;")
        self.assertEqual(differences(self.db), "", sql)

    def test_settings_the_rows_depend_on(self):
        for sql in ("UPDATE vmail.settings SET subaddress_delimiter = '-+'",
                    "UPDATE vmail.settings SET postmaster_address = 'hostmaster@example.net'",
                    "UPDATE vmail.settings SET subaddress_delimiter = '+', postmaster_address = NULL",
                    "UPDATE vmail.settings SET paid_mail_location = 'sdbox:~/dbox', vmail_uid = 5001",
                    "UPDATE vmail.settings SET primary_domain = 'inny.lublin.pl'"):
            self.change_then_compare(sql)

    def test_every_table(self):
        for sql in ("UPDATE vmail.domain SET state = 'suspended' WHERE id = (SELECT max(id) FROM vmail.domain"
                    " WHERE state = 'active' AND kind <> 'primary')",
                    "UPDATE vmail.domain SET state = 'active' WHERE state = 'suspended'",
                    "UPDATE vmail.shell_account SET disk_limit = disk_limit + 1 WHERE login = 'jan'",
                    "SELECT vmail.shell_set('jan', 'state', 'suspended')",
                    "SELECT vmail.account_set('biuro@acme.lublin.pl', 'password', '{SHA512-CRYPT}$6$x')",
                    "SELECT vmail.shell_add('acme', 'ada', 2010, 2010, '/home/ada', NULL, 1048576)",
                    "DELETE FROM vmail.shell_account WHERE login = 'ada'",
                    "SELECT vmail.alias_set('zarzad@acme.lublin.pl', ARRAY['biuro@acme.lublin.pl', 'ewa'])",
                    "SELECT vmail.alias_add('nowy@acme.lublin.pl', ARRAY['jan', 'kadry@acme.lublin.pl'], false)",
                    "SELECT vmail.account_add('nowa@acme.com.pl', 'paid', 'acme', NULL, 1048576)",
                    "DELETE FROM vmail.alias_target t WHERE t.position > 1",
                    "DELETE FROM vmail.alias WHERE id = (SELECT max(id) FROM vmail.alias)",
                    "UPDATE vmail.mail_account SET state = 'suspended' WHERE id = (SELECT min(id) FROM vmail.mail_account)",
                    "DELETE FROM vmail.mail_account WHERE id NOT IN (SELECT mail_account_id FROM vmail.alias_target"
                    " WHERE mail_account_id IS NOT NULL)"):
            self.change_then_compare(sql)

    def test_domain_aliases(self):
        """A domain alias row carries its target's name and state: linking, the target's
        suspension and unlinking keep it up to date."""
        for sql in ("SELECT vmail.domain_unalias('acme.pl')",
                    "SELECT vmail.domain_alias('acme.pl', 'acme.lublin.pl')",
                    "SELECT vmail.domain_set_state('acme.lublin.pl', 'suspended')",
                    "SELECT vmail.domain_set_state('acme.lublin.pl', 'active')",
                    "SELECT vmail.domain_unalias('acme.net.pl')"):
            self.change_then_compare(sql)
        self.assertEqual(pgsql.query(self.db, "SELECT target || ' ' || target_state FROM vmail.route"
                                     " WHERE key = 'acme.pl'"), "acme.lublin.pl active")


class ConcurrentWritersTest(unittest.TestCase):
    """Two transactions change what one row depends on (a shell account and its mail account):
    the second waits for the first, both succeed, and the rows equal a rebuild."""

    def test_overlapping_changes(self):
        db = pgsql.fresh_database("route_concurrent")
        with open(WORLD) as f:
            pgsql.query(db, f.read())
        start = pgsql.query(db, "SELECT clock_timestamp() + interval '1 second'")
        first = (f"SELECT pg_sleep_until('{start}'); BEGIN;"
                 " SELECT vmail.shell_set('jan', 'disk_limit', '104857601');"
                 " SELECT vmail.alias_set('zarzad@acme.lublin.pl', ARRAY['jan', 'biuro@acme.lublin.pl']);"
                 " SELECT pg_sleep(1); COMMIT;")
        # starts while the first holds its changes uncommitted
        second = (f"SELECT pg_sleep_until(timestamptz '{start}' + interval '0.3 second');"
                  " SELECT vmail.account_set('biuro@acme.lublin.pl', 'password', '{SHA512-CRYPT}$6$y');"
                  " SELECT vmail.account_add('nowe@acme.lublin.pl', 'free', 'jan', NULL, 1024);")
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            errors = list(pool.map(lambda s: pgsql.error(db, s), (first, second)))
        self.assertEqual(errors, [None, None])
        self.assertEqual(differences(db), "")


class ScalarAgreesTest(unittest.TestCase):
    """The scalar lookup_* and *_json functions (for psql and scripts) answer what vmaild's
    statements answer, for every key in the relations and its sub-address, upper-case and
    unknown forms."""

    def test_same_answers(self):
        db = pgsql.fresh_database("route_scalar")
        with open(WORLD) as f:
            pgsql.query(db, f.read())
        out = pgsql.query(db, """
CREATE FUNCTION pg_temp.answer(q text, k text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE r text;
BEGIN
	EXECUTE q INTO r USING k;
	RETURN coalesce(r, '(none)');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || SQLERRM;
END $f$;
WITH k AS (
	SELECT DISTINCT x FROM vmail.route r, LATERAL (VALUES (r.key), (upper(r.key)),
		(replace(r.key, '@', '+tag@')), ('nobody@' || r.key), ('postmaster@' || r.key),
		('abuse+x@' || r.key)) v(x)
	UNION SELECT x FROM vmail.login l, LATERAL (VALUES (l.key), (upper(l.key)), ('x' || l.key)) v(x))
SELECT coalesce(string_agg(format('%s(%s): %s / %s', f[1], x, a, b), E'\\n') FILTER (WHERE a IS DISTINCT FROM b),
	'agree ' || count(*))
FROM (SELECT f, x, pg_temp.answer(format('SELECT vmail.%s($1)', f[1]), x) a,
		pg_temp.answer(format('SELECT (SELECT v FROM vmail.%s($1) v)', f[2]), x) b
	FROM k, (SELECT ARRAY[s, d] FROM unnest(
		ARRAY['lookup_domain', 'lookup_alias', 'lookup_mailbox', 'lookup_sender', 'passdb_json', 'userdb_json'],
		ARRAY['route_domain', 'route_alias', 'route_mailbox', 'route_sender', 'passdb_dict', 'userdb_dict']) p(s, d)) p(f)) c;""")
        self.assertRegex(out.strip().split("\n")[-1], r"^agree [1-9][0-9]+$", out)


def caller_role(db):
    """CALLER, a member of vmail_lookup (the role vmaild and Dovecot log in as), for db."""
    pgsql.query(db, f"""
DO $$ BEGIN CREATE ROLE {CALLER} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
GRANT vmail_lookup TO {CALLER};
ANALYZE;""")


def plan_nodes(plan):
    yield plan
    for p in plan.get("Plans", []):
        yield from plan_nodes(p)


class PlanTest(unittest.TestCase):
    """Each lookup the relation answers, planned as its caller's role: index scans on
    vmail.route, nothing else scanned, no function scan."""

    ROUTE = ("route",)
    LOGIN = ("login", "mailbox_usage", "files_usage")
    # the statements as their callers send them, and the relations each may read
    LOOKUPS = {name: (CALLS[name][0], rel) for name, rel in (
        ("lookup_domain", ROUTE), ("lookup_alias", ROUTE), ("lookup_mailbox", ROUTE), ("lookup_sender", ROUTE),
        ("passdb_json", LOGIN), ("userdb_json", LOGIN), ("password_query", LOGIN), ("user_query", LOGIN),
        ("user_query_v24", LOGIN))}
    KEYS = ("example.org", "someone+tag@example.org", "unknown@example.org", "jan", "biuro@acme.lublin.pl")

    @classmethod
    def setUpClass(cls):
        cls.db = pgsql.fresh_database("route_plans")
        with open(WORLD) as f:
            pgsql.query(cls.db, f.read())
        caller_role(cls.db)

    def plan(self, sql, key):
        out = pgsql.query(self.db, f"SET ROLE {CALLER}; PREPARE q(text) AS {sql};"
                          " SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off;"
                          f" EXPLAIN (FORMAT JSON) EXECUTE q('{key}');")
        return json.loads(out[out.index("["):])[0]["Plan"]

    def nodes(self, plan):
        return plan_nodes(plan)

    def test_index_scans_on_the_relation_only(self):
        for name, (sql, relations) in self.LOOKUPS.items():
            for key in self.KEYS:
                plan = self.plan(sql, key)
                scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name"))
                         for n in self.nodes(plan) if "Scan" in n["Node Type"]]
                with self.subTest(lookup=name, key=key):
                    self.assertTrue(scans, json.dumps(plan))
                    bad = [s for s in scans if s[0] not in ("Index Scan", "Index Only Scan", "Bitmap Index Scan", "Bitmap Heap Scan")
                           or s[1] not in relations + (None,)]
                    self.assertEqual(bad, [], f"{name}({key}) scans more than {relations} by index: {scans}")


def c_strings(text):
    """The concatenation of the C string literals in text (whose only escape is \\")."""
    return "".join(m.replace('\\"', '"') for m in re.findall(r'"((?:[^"\\]|\\.)*)"', text))


def batch_forms():
    """{kind: (single statement, batch statement)} as src/vmaild/lookup_kinds.c declares them,
    its BATCH_OF / BATCH_VALUE_OF macros expanded (their argument fn stands between literals)."""
    with open(os.path.join(pgsql.REPO, "src", "vmaild", "lookup_kinds.c")) as f:
        src = f.read()
    macros = dict(re.findall(r"#define (BATCH_\w+)\(fn\) \\\n((?:.*\\\n)*.*)", src))
    forms = {}
    for kind, entry in re.findall(r"\[LOOKUP_(\w+)\] = \{ (\"vmail_.*?)\},\n", src, re.S):
        single = re.match(r'\s*"\w+", ("(?:[^"\\]|\\.)*")', entry)
        tail = entry.rsplit("PG_STMT_RETRY,", 1)
        if not single or len(tail) != 2 or tail[1].strip() == "NULL":
            continue
        m = re.match(r'\s*(BATCH_\w+)\("([\w.]+)"\)\s*$', tail[1])
        if m:
            pieces = re.findall(r'"(?:[^"\\]|\\.)*"|\bfn\b', macros[m.group(1)])
            batch = "".join(m.group(2) if p == "fn" else c_strings(p) for p in pieces)
        else:
            batch = c_strings(tail[1])
        forms[kind.lower()] = (c_strings(single.group(1)), batch)
    return forms


class BatchTest(unittest.TestCase):
    """vmaild asks many keys of a kind in one query (the batch forms of lookup_kinds.c): for
    every key of the golden table, the batch answers what the single statement answers, with
    VM451 as deferred = true, and plans index scans on the relation under an unnest."""

    GOLDEN_CALL = {"domain": "lookup_domain", "alias": "lookup_alias", "mailbox": "lookup_mailbox",
                   "sender": "lookup_sender", "passdb": "passdb_json", "userdb": "userdb_json",
                   "policy": "policy_check"}

    @classmethod
    def setUpClass(cls):
        cls.db = pgsql.fresh_database("route_batches")
        with open(WORLD) as f:
            pgsql.query(cls.db, f.read())
        caller_role(cls.db)
        cls.forms = batch_forms()
        rows, _ = read_table(GOLDEN)
        cls.args = {}
        for row in rows:
            cls.args.setdefault(row.call, []).append(row.args())

    def test_every_batchable_kind_has_golden_keys(self):
        self.assertEqual(set(self.forms), set(self.GOLDEN_CALL), self.forms)
        for kind, call in self.GOLDEN_CALL.items():
            self.assertGreater(len(self.args.get(call, [])), 5, call)

    def test_batch_answers_as_the_single_statement(self):
        one = """CREATE FUNCTION pg_temp.one(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE r text;
BEGIN
	EXECUTE q INTO r;
	RETURN coalesce('v:' || r, 'notfound');
EXCEPTION WHEN SQLSTATE 'VM451' THEN RETURN 'deferred';
	WHEN OTHERS THEN RETURN 'error ' || SQLSTATE;
END $f$;"""
        for kind, call in self.GOLDEN_CALL.items():
            single, batch = self.forms[kind]
            keys = [a for a in self.args[call] if len(a) == single.count("$") and
                    all(len(x) <= 1024 for x in a)]
            script = [one]
            for a in keys:
                q = re.sub(r"\$(\d+)", lambda m: literal(a[int(m.group(1)) - 1]), single)
                script.append(f"SELECT pg_temp.one({literal(q)});")
            arrays = ["ARRAY[" + ",".join(literal(a[j]) for a in keys) + "]::text[]"
                      for j in range(len(keys[0]))]
            bq = re.sub(r"\$(\d+)(::text\[\])?", lambda m: arrays[int(m.group(1)) - 1], batch)
            script.append(f"SELECT coalesce(json_agg(json_build_array(b.i, b.v, b.d)), '[]') FROM ({bq}) b(i, v, d);")
            out = pgsql.query(self.db, f"SET ROLE {CALLER};\n" + "\n".join(script)).split("\n")
            singles, got = out[:-1], json.loads(out[-1])
            self.assertEqual(len(singles), len(keys), out)
            answers = {}
            for i, v, d in got:
                self.assertNotIn(i, answers, f"{kind}: two rows for key {i}")
                answers[i] = "deferred" if d else ("notfound" if v is None else "v:" + v)
            kinds_seen = set()
            for n, (a, s) in enumerate(zip(keys, singles), 1):
                if s.startswith("error"):
                    continue  # the single statement fails: vmaild resends a failed batch singly
                kinds_seen.add(s.split(":")[0])
                with self.subTest(kind=kind, key=a):
                    self.assertEqual(answers.get(n, "notfound"), s)
            with self.subTest(kind=kind):  # the golden keys reach found and not found
                self.assertLessEqual({"v", "notfound"}, kinds_seen)

    def test_batch_plans(self):
        for kind, call in self.GOLDEN_CALL.items():
            _, batch = self.forms[kind]
            if kind not in ("domain", "alias", "mailbox", "sender"):
                continue
            keys = "ARRAY['someone+tag@example.org','unknown@example.org','biuro@acme.lublin.pl']"
            out = pgsql.query(self.db, f"SET ROLE {CALLER}; SET enable_seqscan = off;"
                              f" EXPLAIN (FORMAT JSON) {batch.replace('$1', keys)};")
            plan = json.loads(out[out.index("["):])[0]["Plan"]
            scans = [(n["Node Type"], n.get("Relation Name"), n.get("Function Name"))
                     for n in plan_nodes(plan) if "Scan" in n["Node Type"]]
            with self.subTest(kind=kind):
                bad = [s for s in scans if not (s[0] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan",
                                                       "Bitmap Heap Scan") and s[1] in ("route", None))
                       and s != ("Function Scan", None, "unnest")]
                self.assertEqual(bad, [], f"{kind}: {scans}")


def setUpModule():
    pgsql.server_up()


if __name__ == "__main__":
    unittest.main()
