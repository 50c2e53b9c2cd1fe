/* vmaild: command line only; everything else is in daemon.c. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmail/build_config.h"
#include "daemon.h"

#define DEFAULT_CONFIG "/etc/vmaild/vmaild.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vmaild [-f] [-t] [-c FILE]\n"
		"  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -f       run in the foreground (the default and only mode)\n"
		"  -t       check the configuration, print the effective settings, exit\n"
		"  -V       print the version and exit\n"
		"  -h       this help\n");
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int test_only = 0;
	int opt;
	while ((opt = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			break;
		case 't':
			test_only = 1;
			break;
		case 'V':
			printf("vmaild %s\n", VMAIL_VERSION);
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
	return test_only ? daemon_check_config(path) : daemon_run(path);
}
