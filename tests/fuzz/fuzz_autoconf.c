/* fuzz_autoconf: the Outlook autodiscover request reader, and the address it hands the database. */
#include "panel_autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: one byte read past size is an ASan report, not a lucky neighbour */
	char *body = malloc(size ? size : 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	char addr[AUTOCONF_MAX_ADDRESS + 1];
	memset(addr, 'Z', sizeof(addr));
	enum autoconf_req st = autoconf_parse_request(body, size, addr, sizeof(addr));
	CHECK(autoconf_req_reason(st) != NULL);
	if (st == AUTOCONF_REQ_OK) {
		size_t n = strnlen(addr, sizeof(addr));
		CHECK(n > 0 && n <= AUTOCONF_MAX_ADDRESS);
		CHECK(!blank(addr[0]) && !blank(addr[n - 1]));
		CHECK(size <= AUTOCONF_MAX_BODY);

		/* a smaller buffer: the same address when it fits, else no address */
		char small[16];
		enum autoconf_req st2 = autoconf_parse_request(body, size, small, sizeof(small));
		CHECK(n < sizeof(small) ? st2 == AUTOCONF_REQ_OK && strcmp(small, addr) == 0
					: st2 == AUTOCONF_REQ_NO_ADDRESS && small[0] == '\0');

		/* the root was closed: no shorter prefix is a whole request */
		if (size > 0 && !blank(body[size - 1]))
			CHECK(autoconf_parse_request(body, size - 1, small, sizeof(small)) !=
			      AUTOCONF_REQ_OK);
	} else {
		CHECK(addr[0] == '\0');
		if (size > AUTOCONF_MAX_BODY)
			CHECK(st == AUTOCONF_REQ_TOO_LARGE);
	}
	free(body);
	return 0;
}
