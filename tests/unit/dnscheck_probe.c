/*
 * dnscheck_probe: one dnscheck_lookup from the command line, for the dnsmasq tests of the
 * lookups no vmailctl command makes yet (SRV, A, AAAA, CNAME).  Prints the status, the
 * canonical name and one line per record ("pref weight port text"), or the error.
 *
 *   dnscheck_probe NAMESERVERS TYPE NAME      TYPE: A AAAA CNAME MX SRV TXT
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dnscheck.h"

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {
		{ "A", DNSCHECK_TYPE_A },   { "AAAA", DNSCHECK_TYPE_AAAA }, { "CNAME", DNSCHECK_TYPE_CNAME },
		{ "MX", DNSCHECK_TYPE_MX }, { "SRV", DNSCHECK_TYPE_SRV },   { "TXT", DNSCHECK_TYPE_TXT },
	};
	uint16_t type = 0;
	for (size_t i = 0; argc == 4 && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(argv[2], types[i].name) == 0)
			type = types[i].type;
	if (!type) {
		fprintf(stderr, "usage: dnscheck_probe NAMESERVERS A|AAAA|CNAME|MX|SRV|TXT NAME\n");
		return 2;
	}
	char err[256];
	struct dnscheck_resolver *r = dnscheck_resolver_new(NULL, argv[1], 1000, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "dnscheck_probe: %s\n", err);
		return 1;
	}
	static struct dnscheck_answer ans;
	dnscheck_lookup(r, argv[3], type, &ans);
	dnscheck_resolver_free(r);
	printf("%s\n", dnscheck_status_name(ans.status));
	if (ans.status == DNSCHECK_TEMPFAIL) {
		printf("%s\n", ans.error);
		return 75;
	}
	printf("%s\n", ans.canonical);
	for (size_t i = 0; i < ans.count; i++)
		printf("%u %u %u %s\n", ans.rec[i].pref, ans.rec[i].weight, ans.rec[i].port, ans.rec[i].text);
	return 0;
}
