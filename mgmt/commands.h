/*
 * commands.h - the command table of the management protocol and its
 * handlers. One table {words, min/max args, privilege, handler, usage,
 * help}: `help` is generated from it, and arity, privilege and the
 * before-auth rule are checked in cmd_dispatch() only, before any handler
 * runs, so a refused command changes nothing.
 *
 * Must never: reply twice to one line, or let a handler run for a command
 * its user may not run.
 */
#ifndef TANDEM_MGMT_COMMANDS_H
#define TANDEM_MGMT_COMMANDS_H

#include <stddef.h>

struct cli;
struct cli_job;

/* One command line (NUL-terminated, no LF, already within the cap). */
void cmd_dispatch(struct cli *c, char *line, size_t len);
/* The "." line of a config body arrived (c->body holds the text). */
void cmd_body_done(struct cli *c);
/* The client is going away: its job, if any, must not touch it. */
void cmd_detach(struct cli *c);

#define CMD_WORDS_MAX 64 /* words in one command line */

#endif
