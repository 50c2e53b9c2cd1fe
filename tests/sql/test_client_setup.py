"""How mail programs reach the service (issue 22) against a real PostgreSQL:
vmail.client_setup(address) gives the servers for an address, vmail.client_dns_records(domain)
the records a domain should publish, both from the settings that vmail.setting_set checks.

The answers must not tell whether an address exists (no account probing through the automatic
configuration): only whether its domain is hosted here and active.  The panel's role may call
both functions and still reads no settings row.

Plain SQL, the way the panel and vmailctl call it.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402

PRIMARY = "platon.man.lublin.pl"  # the settings' default primary domain (011_baseline.sql)
NEW_KEYS = ("service_name", "imap_host", "pop3_host", "submission_host", "web_host", "client_services",
            "imaps_port", "imap_port", "pop3s_port", "pop3_port", "submissions_port", "submission_port")
SETTINGS = "SELECT " + ", ".join(NEW_KEYS) + " FROM vmail.settings"


def setUpModule():
    pgsql.server_up()


def lit(s):
    """s as an SQL literal, control characters as E'' escapes."""
    body = "".join("\\x%02x" % ord(c) if ord(c) < 32 or c == "\x7f" else
                   "\\\\" if c == "\\" else "''" if c == "'" else c for c in s)
    return "E'%s'" % body


def endpoints(host, username, domain, services=("imaps", "imap", "submissions", "submission")):
    """The rows client_setup gives with default ports, every service on host."""
    table = {"imaps": ("imap", 993, "ssl"), "imap": ("imap", 143, "starttls"),
             "pop3s": ("pop3", 995, "ssl"), "pop3": ("pop3", 110, "starttls"),
             "submissions": ("smtp", 465, "ssl"), "submission": ("smtp", 587, "starttls")}
    return ["|".join((s, table[s][0], host, str(table[s][1]), table[s][2], username, domain, "Platon"))
            for s in services]


class ClientSetupSqlTest(unittest.TestCase):
    def setUp(self):
        self.db = pgsql.fresh_database("client_" + self._testMethodName[5:])
        self.sql("SELECT vmail.customer_add('acme', 'Acme')")
        self.sql("SELECT vmail.domain_add('acme', 'acme.lublin.pl')")  # local
        self.sql("SELECT vmail.domain_set_state('acme.lublin.pl', 'active')")
        self.sql("SELECT vmail.domain_add('acme', 'acme.com.pl')")     # external, awaiting proof
        self.sql("SELECT vmail.domain_add('acme', 'acme.eu')")
        self.sql("SELECT vmail.domain_set_state('acme.eu', 'active')")
        self.sql("SELECT vmail.domain_alias('acme.eu', 'acme.lublin.pl')")
        self.sql("SELECT vmail.account_add('ewa@acme.lublin.pl', 'paid', 'acme', NULL, 1048576)")

    def sql(self, q):
        return pgsql.query(self.db, q)

    def setup_rows(self, address_sql):
        out = self.sql(f"SELECT * FROM vmail.client_setup({address_sql})")
        return out.splitlines() if out else []

    def records(self, domain="acme.lublin.pl"):
        out = self.sql(f"SELECT name, type, value FROM vmail.client_dns_records({lit(domain)})")
        return out.splitlines()

    def refused(self, q, sqlstate, text):
        err = pgsql.error(self.db, q)
        self.assertIsNotNone(err, f"expected {sqlstate} from: {q}")
        self.assertIn(sqlstate, err, q)
        self.assertIn(text, err, q)

    def panel(self, q):
        """q as the panel's role; (ok, output or error)."""
        r = pgsql._psql(self.db, "SET ROLE vmail_panel; " + q)
        return r.returncode == 0, (r.stdout if r.returncode == 0 else r.stderr).strip()

    # ---- client_setup ----

    def test_addresses_served(self):
        cases = [  # address as typed, the user name and domain it answers with
            ("jan@" + PRIMARY, "jan@" + PRIMARY, PRIMARY),                      # shell account jan
            ("ewa@acme.lublin.pl", "ewa@acme.lublin.pl", "acme.lublin.pl"),     # an existing mailbox
            ("info@acme.eu", "info@acme.eu", "acme.eu"),                        # an alias domain
            ("  Ewa@ACME.Lublin.PL  ", "ewa@acme.lublin.pl", "acme.lublin.pl"),  # trimmed, lower-cased
            ("jan.kowalski+tag@acme.lublin.pl", "jan.kowalski+tag@acme.lublin.pl", "acme.lublin.pl"),
        ]
        for typed, user, domain in cases:
            with self.subTest(address=typed):
                self.assertEqual(self.setup_rows(lit(typed)), endpoints(PRIMARY, user, domain))

    def test_existing_and_missing_mailbox_answer_alike(self):
        """No account probing: only the user name (the address itself) differs."""
        have = self.setup_rows("'ewa@acme.lublin.pl'")
        none = self.setup_rows("'nobody@acme.lublin.pl'")
        self.assertEqual(len(have), 4)
        self.assertEqual([r.replace("ewa@", "nobody@") for r in have], none)

    def test_domains_not_served(self):
        for address, domain in (("jan@acme.com.pl", "acme.com.pl"),   # external, awaiting proof
                                ("jan@gmail.com", "gmail.com"),        # not hosted here
                                ("jan@sub.acme.lublin.pl", "sub.acme.lublin.pl")):
            with self.subTest(address=address):
                self.refused(f"SELECT * FROM vmail.client_setup('{address}')", "VM404",
                             f"domain {domain} is not served here")
        self.sql("SELECT vmail.domain_set_state('acme.lublin.pl', 'suspended')")
        self.refused("SELECT * FROM vmail.client_setup('ewa@acme.lublin.pl')", "VM404", "not served here")

    def test_malformed_addresses(self):
        cases = ["''", "NULL", "'a'", "'a@'", "'@b.pl'", "'a b@acme.lublin.pl'", "'a@b@acme.lublin.pl'",
                 "'a@acme..lublin.pl'", "'.a@acme.lublin.pl'", "'a@-acme.lublin.pl'",
                 "'%s@acme.lublin.pl'" % ("x" * 65),                # local part over 64
                 "'%s@acme.lublin.pl'" % ("x" * 300),               # over 254 in all
                 lit("a\x01b@acme.lublin.pl"), lit("a@acme.lublin.pl\n"), lit("a@acme.lublin.pl\t"),
                 lit("a\x7fb@acme.lublin.pl"), lit("a\tb@acme.lublin.pl")]
        for address in cases:
            with self.subTest(address=address[:40]):
                self.refused(f"SELECT * FROM vmail.client_setup({address})", "VM400", "not an e-mail address")
        # the message quotes at most 100 characters of what was typed
        err = pgsql.error(self.db, "SELECT * FROM vmail.client_setup('%s@x.pl')" % ("y" * 300))
        self.assertNotIn("y" * 101, err)

    def test_order_and_offered_services(self):
        cases = [  # client_services as set, the rows in the order they are advertised
            ("imaps imap submissions submission", ["imaps", "imap", "submissions", "submission"]),
            ("submission, imap pop3 imaps", ["imaps", "imap", "pop3", "submission"]),  # implicit TLS first
            ("pop3s pop3 imaps imap submissions submission",
             ["imaps", "imap", "pop3s", "pop3", "submissions", "submission"]),
            ("SUBMISSIONS", ["submissions"]),
            ("", []),
        ]
        for services, want in cases:
            with self.subTest(services=services):
                self.sql(f"SELECT vmail.setting_set('client_services', '{services}')")
                rows = self.setup_rows("'ewa@acme.lublin.pl'")
                self.assertEqual([r.split("|")[0] for r in rows], want)

    def test_hosts_ports_and_name_from_the_settings(self):
        for key, value in (("imap_host", "IMAP.isp.pl."), ("submission_host", "smtp.isp.pl"),
                           ("pop3_host", "pop.isp.pl"), ("imaps_port", "10993"), ("submission_port", "2587"),
                           ("client_services", "imaps pop3s submission"), ("service_name", " ISP Poczta ")):
            self.sql(f"SELECT vmail.setting_set('{key}', '{value}')")
        self.assertEqual(self.setup_rows("'ewa@acme.lublin.pl'"), [
            "imaps|imap|imap.isp.pl|10993|ssl|ewa@acme.lublin.pl|acme.lublin.pl|ISP Poczta",
            "pop3s|pop3|pop.isp.pl|995|ssl|ewa@acme.lublin.pl|acme.lublin.pl|ISP Poczta",
            "submission|smtp|smtp.isp.pl|2587|starttls|ewa@acme.lublin.pl|acme.lublin.pl|ISP Poczta"])
        # an empty host is the primary domain again, and the primary domain follows its setting
        self.sql("SELECT vmail.setting_set('imap_host', '')")
        self.sql("SELECT vmail.setting_set('primary_domain', 'isp.example.pl')")
        self.assertEqual(self.setup_rows("'ewa@acme.lublin.pl'")[0].split("|")[2], "isp.example.pl")

    # ---- setting_set of the new keys ----

    def test_setting_set_good_values(self):
        cases = [  # key, value as typed, the column as stored
            ("imaps_port", "10993", "10993"), ("imap_port", "1", "1"), ("pop3s_port", "65535", "65535"),
            ("pop3_port", "0110", "110"), ("submissions_port", "465", "465"),
            ("submission_port", "2525", "2525"),
            ("imap_host", " IMAP.Example.NET. ", "imap.example.net"),
            ("pop3_host", "pop3.isp.pl", "pop3.isp.pl"),
            ("submission_host", "smtp.isp.pl.", "smtp.isp.pl"), ("web_host", "WWW.isp.pl", "www.isp.pl"),
            ("web_host", "", ""), ("imap_host", "   ", ""),  # empty: NULL, the primary domain
            ("client_services", "imaps, SUBMISSIONS  pop3s", "{imaps,submissions,pop3s}"),
            ("client_services", "", "{}"),
            ("service_name", "  Poczta ISP + co  ", "Poczta ISP + co"),
            ("service_name", "Ł" * 64, "Ł" * 64),
        ]
        for key, value, stored in cases:
            with self.subTest(key=key, value=value):
                self.sql(f"SELECT vmail.setting_set('{key}', {lit(value)})")
                self.assertEqual(self.sql(f"SELECT coalesce({key}::text, '') FROM vmail.settings"), stored)

    def test_setting_set_bad_values_change_nothing(self):
        cases = [  # key, value, what the message says
            ("imaps_port", "0", 'imaps_port must be a port number from 1 to 65535, not "0"'),
            ("imap_port", "65536", "imap_port must be a port number"),
            ("pop3s_port", "x", 'not "x"'), ("pop3_port", "-1", "pop3_port must be a port number"),
            ("submissions_port", "", "submissions_port must be a port number"),
            ("submission_port", "587 ", "submission_port must be a port number"),
            ("submission_port", "999999", "submission_port must be a port number"),
            ("imap_host", "not a host", 'imap_host: "not a host" is not a host name'),
            ("pop3_host", "bad_host.pl", "pop3_host: \"bad_host.pl\" is not a host name"),
            ("submission_host", "a..b.pl", "is not a host name"),
            ("web_host", "-www.isp.pl", "is not a host name"),
            ("web_host", "192.0.2.1", "is not a host name"),
            ("web_host", "x" * 64 + ".pl", "is not a host name"),
            ("client_services", "imaps smtp", 'client_services: "smtp" is not one of imaps, imap'),
            ("client_services", "imaps,pop", '"pop" is not one of'),
            ("service_name", "<b>ISP</b>", "service_name must be 1 to 64 characters"),
            ("service_name", "A & B", "service_name must be"),
            ("service_name", 'say "hi"', "without control characters or <>&\""),
            ("service_name", "a\nb", "service_name must be"), ("service_name", "  ", "service_name must be"),
            ("service_name", "x" * 65, "service_name must be"),
        ]
        before = self.sql(SETTINGS)
        for key, value, message in cases:
            with self.subTest(key=key, value=value):
                self.refused(f"SELECT vmail.setting_set('{key}', {lit(value)})", "VM400", message)
                self.assertEqual(self.sql(SETTINGS), before)

    # ---- client_dns_records ----

    def test_records_pop3_off(self):
        self.assertEqual(self.records(), [
            f"_imaps._tcp.acme.lublin.pl|SRV|0 1 993 {PRIMARY}.",
            f"_imap._tcp.acme.lublin.pl|SRV|0 1 143 {PRIMARY}.",
            f"_submissions._tcp.acme.lublin.pl|SRV|0 1 465 {PRIMARY}.",
            f"_submission._tcp.acme.lublin.pl|SRV|0 1 587 {PRIMARY}.",
            f"_autodiscover._tcp.acme.lublin.pl|SRV|0 1 443 {PRIMARY}.",
            f"autoconfig.acme.lublin.pl|CNAME|{PRIMARY}."])

    def test_records_pop3_on_and_services_not_offered(self):
        for key, value in (("client_services", "imaps pop3s submission"), ("imap_host", "imap.isp.pl"),
                           ("pop3_host", "pop.isp.pl"), ("submission_host", "smtp.isp.pl"),
                           ("pop3s_port", "1995"), ("web_host", "www.isp.pl")):
            self.sql(f"SELECT vmail.setting_set('{key}', '{value}')")
        self.assertEqual(self.records(" ACME.lublin.PL. "), [
            "_imaps._tcp.acme.lublin.pl|SRV|0 1 993 imap.isp.pl.",
            "_imap._tcp.acme.lublin.pl|SRV|0 0 0 .",
            "_pop3s._tcp.acme.lublin.pl|SRV|0 1 1995 pop.isp.pl.",
            "_pop3._tcp.acme.lublin.pl|SRV|0 0 0 .",
            "_submissions._tcp.acme.lublin.pl|SRV|0 0 0 .",
            "_submission._tcp.acme.lublin.pl|SRV|0 1 587 smtp.isp.pl.",
            "_autodiscover._tcp.acme.lublin.pl|SRV|0 1 443 www.isp.pl.",
            "autoconfig.acme.lublin.pl|CNAME|www.isp.pl."])
        # POP3 off again: its two records go, the rest stays
        self.sql("SELECT vmail.setting_set('client_services', 'imaps submission')")
        self.assertEqual(len(self.records()), 6)
        self.assertNotIn("pop3", "".join(self.records()))

    def test_records_follow_web_host(self):
        for web, target in (("www.isp.pl", "www.isp.pl."), ("Panel.ISP.pl.", "panel.isp.pl."),
                            ("", PRIMARY + ".")):
            with self.subTest(web_host=web):
                self.sql(f"SELECT vmail.setting_set('web_host', '{web}')")
                recs = self.records("acme.com.pl")  # awaiting proof: the customer may publish early
                self.assertEqual(recs[-2:], [f"_autodiscover._tcp.acme.com.pl|SRV|0 1 443 {target}",
                                             f"autoconfig.acme.com.pl|CNAME|{target}"])

    def test_records_of_unknown_domain(self):
        for domain in ("gmail.com", "", "sub.acme.lublin.pl"):
            with self.subTest(domain=domain):
                self.refused(f"SELECT * FROM vmail.client_dns_records({lit(domain)})", "VM404",
                             "unknown domain")

    # ---- the panel's role ----

    def test_panel_role_may_ask_but_reads_no_settings(self):
        ok, out = self.panel("SELECT count(*) FROM vmail.client_setup('Ewa@acme.lublin.pl')")
        self.assertEqual((ok, out), (True, "4"))
        ok, out = self.panel("SELECT count(*) FROM vmail.client_dns_records('acme.lublin.pl')")
        self.assertEqual((ok, out), (True, "6"))
        for q in ("SELECT * FROM vmail.settings", "SELECT web_host FROM vmail.settings",
                  "SELECT vmail.settings()", "SELECT * FROM vmail.client_endpoints()",
                  "SELECT vmail.setting_set('web_host', 'evil.example')",
                  "UPDATE vmail.settings SET web_host = 'evil.example'"):
            with self.subTest(q=q):
                ok, out = self.panel(q)
                self.assertFalse(ok, f"{q}: {out}")
                self.assertIn("permission denied", out)
        # the panel's role sees the same refusals as everyone
        ok, out = self.panel("SELECT * FROM vmail.client_setup('x@gmail.com')")
        self.assertFalse(ok)
        self.assertIn("VM404", out)
        self.assertEqual(self.sql("SELECT coalesce(web_host, '-') FROM vmail.settings"), "-")


if __name__ == "__main__":
    unittest.main()
