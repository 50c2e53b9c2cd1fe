"""Out-of-office replies and forwarding (issue 24) against a real PostgreSQL, and the Sieve
scripts they make run by Pigeonhole's own sieve-test (dovecot-sieve): what a delivery would do.

Every customer string reaches a script through vmail.sieve_quote or vmail.sieve_text; the
table of escapes below includes a subject and a text that try to close the string and add a
redirect.  R11: at most forward_limit targets, no unknown hosted target, no loop (also when
two sessions close one at the same instant).  The dict answers Pigeonhole reads
(vmail.dict_sieve_get) follow the quota socket's uid rule.
"""
import concurrent.futures
import datetime
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402

PRIMARY = "platon.man.lublin.pl"
JAN = "jan@" + PRIMARY


def setUpModule():
    pgsql.server_up()


def lit(s):
    """s as an SQL literal, control characters as E'' escapes (NULL for None)."""
    if s is None:
        return "NULL"
    body = "".join("\\x%02x" % ord(c) if ord(c) < 32 or c == "\x7f" else
                   "\\\\" if c == "\\" else "''" if c == "'" else c for c in s)
    return "E'%s'" % body


def sieve_test(script, sender="friend@outside.example", to=JAN, headers=""):
    """Run script with Pigeonhole's sieve-test on one message; return (actions, keep) text."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        path = os.path.join(d, "vmail.sieve")
        with open(path, "w") as f:
            f.write(script)
        msg = os.path.join(d, "m.eml")
        with open(msg, "w") as f:
            f.write(f"Return-Path: <{sender}>\nFrom: {sender}\nTo: {to}\nSubject: hello\n"
                    f"Message-ID: <1@outside.example>\n{headers}\nbody\n")
        r = subprocess.run(["sieve-test", "-o", "mail_uid=nobody", "-o", "mail_gid=nogroup",
                            "-o", "mail_location=maildir:" + os.path.join(d, "Maildir"),
                            "-f", sender, "-a", to, path, msg],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or "final result: success" not in r.stderr:
            raise AssertionError(f"sieve-test failed on:\n{script}\n{r.stdout}\n{r.stderr}")
        out = r.stdout
        actions, _, keep = out.partition("\nImplicit keep:")
        return actions.partition("Performed actions:")[2], keep


class SieveSqlTest(unittest.TestCase):
    def setUp(self):
        self.db = pgsql.fresh_database("sieve_" + self._testMethodName[5:])
        q = self.sql
        q("SELECT vmail.customer_add('acme', 'Acme')")
        q("SELECT vmail.customer_add('other', 'Other')")
        q("SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', NULL, 100*1024*1024)")
        q("SELECT vmail.shell_add('acme', 'ewa', 2002, 2002, '/home/ewa', NULL, 100*1024*1024)")
        q("SELECT vmail.shell_add('other', 'ola', 2003, 2003, '/home/ola', NULL, 100*1024*1024)")
        for d in ("acme.lublin.pl", "acme.eu", "other.pl"):
            q(f"SELECT vmail.domain_add('{'other' if d == 'other.pl' else 'acme'}', '{d}')")
            q(f"SELECT vmail.domain_set_state('{d}', 'active')")
        q("SELECT vmail.domain_alias('acme.eu', 'acme.lublin.pl')")
        q("SELECT vmail.domain_add('acme', 'acme.com.pl')")  # external, awaiting its proof
        q("SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl')")
        q("SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'jan', NULL, 1048576)")
        q("SELECT vmail.account_add('kasa@acme.lublin.pl', 'paid', 'acme', NULL, 1048576)")
        q("SELECT vmail.alias_add('info@acme.lublin.pl', ARRAY['jan'], true, 'jan')")
        q("SELECT vmail.alias_add('@acme.lublin.pl', ARRAY['ewa'], false)")  # a catch-all

    def sql(self, q):
        return pgsql.query(self.db, q)

    def refused(self, q, sqlstate, text):
        """q must fail with sqlstate and a message containing text, and change nothing."""
        before = self.sql("SELECT count(*), string_agg(s::text, ',' ORDER BY id) FROM vmail.sieve_rule s")
        err = pgsql.error(self.db, q)
        self.assertIsNotNone(err, f"expected {sqlstate} from: {q}")
        self.assertIn(sqlstate, err)
        self.assertIn(text, err)
        self.assertEqual(before, self.sql("SELECT count(*), string_agg(s::text, ',' ORDER BY id) "
                                          "FROM vmail.sieve_rule s"), "a refused change left traces")

    def vacation(self, address, subject="Away", body="Back on Monday.", start=None, end=None, days=None,
                 sender=None):
        self.sql(f"SELECT vmail.vacation_set({lit(address)}, {lit(subject)}, {lit(body)}, "
                 f"{lit(start)}::date, {lit(end)}::date, {'NULL' if days is None else days}, {lit(sender)})")

    def script(self, login, uid=-1):
        """The script as Pigeonhole gets it: the name's id, then the data under that id; None
        for a script that does nothing (only comments: the mailbox has no rules)."""
        sid = self.sql(f"SELECT vmail.dict_sieve_get({lit(login)}, 'priv/sieve/name/vmail', {uid})")
        self.assertRegex(sid, r"^[0-9a-f]{64}$")
        text = self.sql(f"SELECT vmail.dict_sieve_get({lit(login)}, 'priv/sieve/data/{sid}', {uid})") + "\n"
        if all(line.startswith("#") for line in text.splitlines()):
            actions, keep = sieve_test(text)  # Pigeonhole takes it: it keeps the mail, nothing else
            self.assertNotIn("*", actions)
            self.assertIn("store message in folder: INBOX", keep)
            return None
        return text

    # ---- escaping: one function per kind of string, table-driven, run by Pigeonhole ----

    def test_sieve_quote_table(self):
        cases = [
            ("plain", "Away", '"Away"'),
            ("quote", 'say "hi"', r'"say \"hi\""'),
            ("backslash", "a\\b", r'"a\\b"'),
            ("backslash before quote", '\\"', r'"\\\""'),
            ("closing and a command", '"; redirect "evil@x.example"; #', r'"\"; redirect \"evil@x.example\"; #"'),
            ("utf-8", "Urlop — wrócę", '"Urlop — wrócę"'),
            ("empty", "", '""'),
        ]
        for name, s, want in cases:
            with self.subTest(name):
                self.assertEqual(self.sql(f"SELECT vmail.sieve_quote({lit(s)})"), want)

    def test_sieve_text_table(self):
        cases = [
            ("one line", "hi", "text:\nhi\n.\n"),
            ("trailing newlines dropped", "hi\n\n", "text:\nhi\n.\n"),
            ("lone dot doubled", "a\n.\nb", "text:\na\n..\nb\n.\n"),
            ("leading dot doubled", ".hidden", "text:\n..hidden\n.\n"),
            ("two dots become three", "..", "text:\n...\n.\n"),
            ("dot inside a line kept", "a.b\nc .", "text:\na.b\nc .\n.\n"),
            ("blank lines kept", "a\n\nb", "text:\na\n\nb\n.\n"),
        ]
        for name, s, want in cases:
            with self.subTest(name):
                self.assertEqual(self.sql(f"SELECT vmail.sieve_text({lit(s)})") + "\n", want)

    def test_texts_reach_the_reply_unchanged(self):
        """Each subject and text, through the script Pigeonhole runs, is the reply's own."""
        cases = [
            ("plain", "Away", "Back on Monday."),
            ("quotes and backslashes", 'Out "of" office \\o/', 'He said "\\n" is a newline.'),
            ("subject closes the string", '"; redirect "evil@x.example"; keep; #',
             "nothing to see"),
            ("text ends the string and adds a redirect", "Away",
             'hi\n.\nredirect "evil@x.example";\n.\nstop;'),
            ("text: inside the text", "Away", "text:\nnot a string\n."),
            ("utf-8", "Urlop — wrócę 7.01", "Zażółć gęślą jaźń.\nДо свидания."),
            ("crlf", "Away", "line one\r\nline two\r\n"),
            ("tabs", "Away", "a\tb"),
        ]
        for name, subject, body in cases:
            with self.subTest(name):
                self.vacation("jan", subject, body)
                actions, keep = sieve_test(self.script("jan"))
                self.assertEqual(actions.count("send vacation message"), 1, actions)
                self.assertIn(f"=> subject : {subject}\n", actions)
                sent = actions.partition("START MESSAGE\n")[2].partition("\nEND MESSAGE")[0]
                self.assertEqual(sent.rstrip("\n"), body.replace("\r\n", "\n").rstrip("\n"))
                self.assertNotIn("redirect message", actions)
                self.assertIn("store message in folder: INBOX", keep)

    def test_bad_input_is_refused_and_changes_nothing(self):
        self.vacation("jan")
        long_body = "x" * 8193
        cases = [
            ("empty subject", ("", "t"), "subject is empty"),
            ("subject of 201 characters", ("s" * 201, "t"), "has 201 characters"),
            ("subject on two lines", ("a\nb", "t"), "one line"),
            ("control character in the subject", ("a\x07b", "t"), "one line"),
            ("empty text", ("s", " \n"), "text is empty"),
            ("text over 8 KiB", ("s", long_body), "8193 bytes"),
            ("escape character in the text", ("s", "a\x1b[31mb"), "control characters"),
            ("lone carriage return", ("s", "a\rb"), "control characters"),
        ]
        for name, (subject, body), text in cases:
            with self.subTest(name):
                self.refused(f"SELECT vmail.vacation_set('jan', {lit(subject)}, {lit(body)}, NULL, NULL, NULL, NULL)",
                             "VM400", text)
        for name, q, text in [
            ("days 0", "NULL, NULL, 0, NULL", "1 to 30 days"),
            ("days 31", "NULL, NULL, 31, NULL", "1 to 30 days"),
            ("end before start", "'2030-01-02', '2030-01-01', NULL, NULL", "before it starts"),
            ("from another mailbox", "NULL, NULL, NULL, 'ewa@" + PRIMARY + "'", "is not an address of"),
            ("from a catch-all's domain", "NULL, NULL, NULL, 'who@acme.lublin.pl'", "is not an address of"),
        ]:
            with self.subTest(name):
                self.refused(f"SELECT vmail.vacation_set('jan', 's', 't', {q})", "VM400", text)
        self.refused("SELECT vmail.vacation_set('nobody@acme.lublin.pl', 's', 't', NULL, NULL, NULL, NULL)",
                     "VM404", "no mailbox")

    def test_dates_are_tested_at_delivery(self):
        today = datetime.date.today()
        day = datetime.timedelta(days=1)
        for name, start, end, replies in [
            ("open", None, None, 1),
            ("today to tomorrow", today, today + day, 1),
            ("until today", None, today, 1),
            ("starts tomorrow", today + day, None, 0),
            ("ended yesterday", today - 2 * day, today - day, 0),
        ]:
            with self.subTest(name):
                self.vacation("jan", start=start and str(start), end=end and str(end))
                actions, keep = sieve_test(self.script("jan"))
                self.assertEqual(actions.count("send vacation message"), replies, actions)
                self.assertIn("store message in folder: INBOX", keep)

    def test_addresses_and_from(self):
        self.vacation("jan", sender="info@acme.eu", days=3)
        row = self.sql("SELECT active, days, from_address, addresses FROM vmail.vacation_show('JAN')")
        self.assertEqual(row, "t|3|info@acme.eu|{info@acme.eu,info@acme.lublin.pl,jan@" + PRIMARY + "}")
        script = self.script("jan")
        self.assertIn(':addresses ["info@acme.eu", "info@acme.lublin.pl", "jan@' + PRIMARY + '"]', script)
        # mail to the alias in the domain alias is answered; the catch-all is nobody's address
        actions, _ = sieve_test(script, to="info@acme.eu")
        self.assertIn("=> from    : info@acme.eu", actions)
        self.assertEqual(actions.count("send vacation message"), 1, actions)
        # an alias added later is in the very next script (nothing stored to keep in step)
        self.sql("SELECT vmail.alias_add('sales@acme.lublin.pl', ARRAY['jan'], true, 'jan')")
        self.assertIn('"sales@acme.lublin.pl"', self.script("jan"))

    def test_vacation_off_keeps_the_text(self):
        self.vacation("biuro@acme.lublin.pl", "Closed", "Open again in January.")
        self.sql("SELECT vmail.vacation_off('biuro@acme.lublin.pl')")
        self.assertIsNone(self.script("biuro@acme.lublin.pl"))
        self.assertEqual(self.sql("SELECT active, subject FROM vmail.vacation_show('biuro@acme.lublin.pl')"),
                         "f|Closed")

    # ---- the dict answers ----

    def test_dict_answers_and_uids(self):
        self.assertIsNone(self.script("jan"))  # no rules: a script that does nothing
        self.assertEqual(self.sql("SELECT vmail.dict_sieve_get('nobody', 'priv/sieve/name/vmail', -1) IS NULL"),
                         "t")  # an unknown login: not found
        self.vacation("jan", "One")
        first = self.sql("SELECT vmail.dict_sieve_get('jan', 'priv/sieve/name/vmail', -1)")
        self.assertEqual(self.sql("SELECT vmail.dict_sieve_get('jan', 'priv/sieve/name/vmail', 2001)"), first)
        self.assertIn('"One"', self.script("jan", uid=2001))
        for name, login, key, uid in [
            ("another uid, name", "jan", "priv/sieve/name/vmail", 2002),
            ("another uid, data", "jan", "priv/sieve/data/" + first, 2002),
            ("an unknown login", "nobody", "priv/sieve/name/vmail", 2002),
        ]:
            with self.subTest(name):
                self.assertEqual(self.sql(f"SELECT vmail.dict_sieve_get('{login}', '{key}', {uid})"), "denied")
        for name, key in [("a stale id", "priv/sieve/data/" + "0" * 64), ("another name", "priv/sieve/name/x"),
                          ("a key outside sieve", "priv/quota/storage")]:
            with self.subTest(name):
                self.assertEqual(self.sql(f"SELECT vmail.dict_sieve_get('jan', '{key}', 2001) IS NULL"), "t")
        self.vacation("jan", "Two")
        second = self.sql("SELECT vmail.dict_sieve_get('jan', 'priv/sieve/name/vmail', -1)")
        self.assertNotEqual(first, second)
        self.assertEqual(self.sql(f"SELECT vmail.dict_sieve_get('jan', 'priv/sieve/data/{first}', -1) IS NULL"),
                         "t")

    def test_lookup_role_reads_scripts_and_nothing_else_changes(self):
        self.vacation("jan")
        self.sql("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sieve_reader') THEN "
                 "CREATE ROLE sieve_reader LOGIN IN ROLE vmail_lookup; END IF; END$$")
        out = self.sql("SET ROLE sieve_reader; "
                       "SELECT vmail.dict_sieve_get('jan', 'priv/sieve/name/vmail', 2001) IS NOT NULL")
        self.assertEqual(out, "t")
        err = pgsql.error(self.db, "SET ROLE sieve_reader; SELECT vmail.forward_add('jan', 'x@outside.example', NULL)")
        self.assertIn("permission denied", err)

    # ---- forwarding (R11) ----

    def test_forward_keep_and_no_keep(self):
        self.sql("SELECT vmail.forward_add('jan', 'Jan.Kowalski@Outside.example', NULL)")
        self.assertEqual(self.sql("SELECT * FROM vmail.forward_list('jan')"), "jan.kowalski@outside.example|t")
        actions, keep = sieve_test(self.script("jan"))
        self.assertIn("redirect message to: <jan.kowalski@outside.example>", actions)
        self.assertIn("preserve implicit keep", actions)
        self.assertIn("store message in folder: INBOX", keep)
        self.sql("SELECT vmail.forward_add('jan', 'ewa', false)")
        self.assertEqual(self.sql("SELECT * FROM vmail.forward_list('jan')"),
                         f"jan.kowalski@outside.example|f\newa@{PRIMARY}|f")
        actions, keep = sieve_test(self.script("jan"))
        self.assertEqual(actions.count("redirect message to:"), 2, actions)
        self.assertNotIn("preserve implicit keep", actions)
        self.assertIn("(none)", keep)
        self.sql(f"SELECT vmail.forward_del('jan', 'EWA@{PRIMARY}')")
        self.sql("SELECT vmail.forward_del('jan', 'jan.kowalski@outside.example')")
        self.assertIsNone(self.script("jan"))
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.sieve_rule"), "0")  # nothing left behind

    def test_forward_refusals(self):
        self.sql("SELECT vmail.forward_add('biuro@acme.lublin.pl', 'a@outside.example', NULL)")
        cases = [
            ("not an address", "jan", "no at sign", "VM400", "is not a mail address"),
            ("a quote in the address", "jan", 'a"b@outside.example', "VM400", "is not a mail address"),
            ("unknown hosted", "jan", "nobody@acme.com.pl", "VM404", "unknown mailbox"),
            ("a hosted domain awaiting its proof", "jan", "x@acme.com.pl", "VM404", "unknown mailbox"),
            ("twice", "biuro@acme.lublin.pl", "A@outside.example", "VM409", "already forwards to a@outside"),
            ("itself", "jan", JAN, "VM409", "would loop"),
            ("itself by its login", "jan", "jan", "VM409", "would loop"),
            ("an unknown login", "jan", "nobody", "VM400", "is not a mail address"),
            ("through its alias", "jan", "info@acme.lublin.pl", "VM409", "would loop"),
            ("through the alias's domain alias", "jan", "INFO@acme.eu", "VM409", "would loop"),
            ("through the catch-all", "ewa", "whoever@acme.lublin.pl", "VM409", "would loop"),
            ("through the catch-all's domain alias", "ewa", "whoever@acme.eu", "VM409", "would loop"),
            ("not a mailbox", "nobody@acme.lublin.pl", "a@outside.example", "VM404", "no mailbox"),
        ]
        for name, mailbox, target, state, text in cases:
            with self.subTest(name):
                self.refused(f"SELECT vmail.forward_add({lit(mailbox)}, {lit(target)}, NULL)", state, text)
        self.refused("SELECT vmail.forward_del('jan', 'a@outside.example')", "VM404", "does not forward to")

    def test_loops_through_other_mailboxes(self):
        # jan -> biuro -> kasa -> (jan's alias) closes a loop of three mailboxes
        self.sql("SELECT vmail.forward_add('jan', 'biuro@acme.lublin.pl', NULL)")
        self.sql("SELECT vmail.forward_add('biuro@acme.lublin.pl', 'kasa@acme.lublin.pl', false)")
        self.refused("SELECT vmail.forward_add('kasa@acme.lublin.pl', 'info@acme.eu', NULL)", "VM409",
                     "would loop")
        # across customers: ola (other) -> jan, then jan -> ola
        self.sql("SELECT vmail.forward_add('ola', 'info@acme.lublin.pl', NULL)")
        self.refused(f"SELECT vmail.forward_add('biuro@acme.lublin.pl', 'ola@{PRIMARY}', NULL)", "VM409",
                     "would loop")
        # a chain that does not come back is fine
        self.sql("SELECT vmail.forward_add('kasa@acme.lublin.pl', 'a@outside.example', NULL)")

    def test_forward_limit(self):
        for i in range(3):
            self.sql(f"SELECT vmail.forward_add('jan', 't{i}@outside.example', NULL)")
        self.refused("SELECT vmail.forward_add('jan', 't3@outside.example', NULL)", "VM409",
                     "already forwards to 3 of 3 addresses")
        self.sql("SELECT vmail.setting_set('forward_limit', '4')")
        self.sql("SELECT vmail.forward_add('jan', 't3@outside.example', NULL)")
        self.sql("SELECT vmail.setting_set('forward_limit', '1')")  # a lower limit keeps what is there
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.forward_list('jan')"), "4")
        self.sql("SELECT vmail.forward_add('ewa', 't4@outside.example', NULL)")
        self.refused("SELECT vmail.forward_add('ewa', 't5@outside.example', NULL)", "VM409", "1 of 1")

    def race(self, statements):
        """Run the statements in parallel sessions, all released at the same instant."""
        start = self.sql("SELECT clock_timestamp() + interval '1 second'")
        barrier = f"SELECT pg_sleep_until('{start}'); "
        with concurrent.futures.ThreadPoolExecutor(len(statements)) as pool:
            return list(pool.map(lambda s: pgsql.error(self.db, barrier + s), statements))

    def test_concurrent_changes_cannot_close_a_loop(self):
        pairs = [("jan", f"ewa@{PRIMARY}"), ("ewa", JAN)]
        for round_ in range(5):
            with self.subTest(round=round_):
                # each forward is slowed inside its transaction, after its check, so that
                # without the lock both checks would pass before either commits
                errors = self.race([f"BEGIN; SELECT vmail.forward_add('{a}', '{b}', NULL); "
                                    "SELECT pg_sleep(0.3); COMMIT;" for a, b in pairs])
                self.assertEqual(sum(e is None for e in errors), 1, errors)
                self.assertTrue(all("would loop" in e for e in errors if e is not None), errors)
                self.assertEqual(self.sql("SELECT count(*) FROM vmail.sieve_rule WHERE forward_to <> '{}'"), "1")
                self.sql(f"SELECT vmail.forward_del('jan', 'ewa@{PRIMARY}') WHERE EXISTS "
                         "(SELECT 1 FROM vmail.forward_list('jan'))")
                self.sql(f"SELECT vmail.forward_del('ewa', '{JAN}') WHERE EXISTS "
                         "(SELECT 1 FROM vmail.forward_list('ewa'))")

    # ---- self-service and audit ----

    def test_self_service(self):
        jan = pgsql.self_token(self.db, "jan")
        self.sql(f"SELECT vmail.self_vacation_set('{jan}', 'biuro@acme.lublin.pl', 'Closed', 'Shut.', "
                 "NULL, NULL, NULL, NULL)")
        self.sql(f"SELECT vmail.self_forward_add('{jan}', 'jan', 'copy@outside.example', NULL)")
        self.assertEqual(self.sql(f"SELECT target FROM vmail.self_forward_list('{jan}', 'JAN')"),
                         "copy@outside.example")
        self.assertEqual(self.sql(f"SELECT subject FROM vmail.self_vacation_show('{jan}', 'biuro@acme.lublin.pl')"),
                         "Closed")
        for name, q in [
            ("another shell account", f"vmail.self_forward_add('{jan}', 'ewa', 'x@outside.example', NULL)"),
            ("a paid account of the customer", f"vmail.self_vacation_off('{jan}', 'kasa@acme.lublin.pl')"),
            ("another customer's", f"vmail.self_forward_list('{jan}', 'ola')"),
        ]:
            with self.subTest(name):
                self.refused(f"SELECT * FROM {q}", "VM403", "is not one of shell account jan")
        self.sql("SELECT vmail.customer_set('acme', 'self_forward', 'off')")
        self.refused(f"SELECT vmail.self_forward_add('{jan}', 'jan', 'x@outside.example', NULL)", "VM403",
                     "ask the administrator")
        self.sql(f"SELECT vmail.self_forward_del('{jan}', 'jan', 'copy@outside.example')")  # stopping stays open
        self.sql("SELECT vmail.forward_add('jan', 'admin-set@outside.example', NULL)")  # the administrator can
        self.refused("SELECT vmail.customer_set('acme', 'self_forward', 'maybe')", "VM400", "on or off")
        actors = self.sql("SELECT string_agg(DISTINCT actor, ',' ORDER BY actor) FROM vmail.audit_log "
                          "WHERE object_kind = 'sieve_rule'")
        self.assertIn("self:jan", actors)


if __name__ == "__main__":
    unittest.main()
