/* privdrop: the one root policy shared by every program that starts as root. */
#ifndef VMAIL_PRIVDROP_H
#define VMAIL_PRIVDROP_H

/*
 * Test-only escape hatch: with this variable set to "1" a daemon keeps running
 * as root when no user is configured.  Never set it in production.
 */
#define PRIVDROP_ALLOW_ROOT_ENV "VMAILD_TEST_ALLOW_ROOT"

#endif
