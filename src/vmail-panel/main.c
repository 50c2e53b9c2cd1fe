/* vmail-panel: command line only; everything else is in panel_server.c. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmail/build_config.h"
#include "panel_server.h"

#define DEFAULT_CONFIG "/etc/vmaild/vmail-panel.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vmail-panel [-t] [-c FILE]\n"
		"  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t       check the configuration, print the effective settings, exit\n"
		"  -V       print the version and exit\n"
		"  -h       this help\n");
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int test_only = 0;
	int opt;
	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = 1;
			break;
		case 'V':
			printf("vmail-panel %s\n", VMAIL_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return test_only ? panel_server_check_config(path) : panel_server_run(path);
}
