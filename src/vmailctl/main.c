/* vmailctl: administration and self-service CLI; everything but main() is in src/lib/ctl*.c. */
#include "vmail/ctl.h"

int main(int argc, char **argv)
{
	return ctl_main(argc, argv);
}
