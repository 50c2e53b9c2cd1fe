/* vmailctl: administration and self-service CLI; dispatch in ctl.c, one ctl_<noun>.c per noun. */
#include "ctl.h"

int main(int argc, char **argv)
{
	return ctl_main(argc, argv);
}
