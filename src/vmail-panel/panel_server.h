/* panel_server: vmail-panel's life cycle, HTTP routing and the request flows. */
#ifndef VMAIL_PANEL_SERVER_H
#define VMAIL_PANEL_SERVER_H

/*
 * panel_server_run - run vmail-panel in the foreground with the configuration
 * at path until SIGTERM/SIGINT; returns the process exit status.
 */
int panel_server_run(const char *path);

/* panel_server_check_config - load and validate path, print the effective settings; exit status */
int panel_server_check_config(const char *path);

#endif
