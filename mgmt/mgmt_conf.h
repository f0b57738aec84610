/*
 * mgmt_conf.h - tandem-mgmt's configuration (conf/mgmt.conf, libconfig).
 *
 * Loaded and validated as a whole; on error nothing is returned and err
 * holds "FILE:LINE: SETTING: reason". Unknown settings are errors.
 *
 * Must never: keep a token anywhere but in struct mgmt_user (wiped on free).
 */
#ifndef TANDEM_MGMT_CONF_H
#define TANDEM_MGMT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define MCONF_NAME_MAX 32
#define MCONF_PATH_MAX 108 /* sun_path */

enum mgmt_role { ROLE_READ_ONLY = 0, ROLE_ADMIN = 1 };

struct mgmt_user {
	char name[MCONF_NAME_MAX];
	uint8_t token[AUTH_TOKEN_MAX];
	size_t token_len;
	enum mgmt_role role;
};

struct mgmt_conf {
	char name[MCONF_NAME_MAX];        /* node name in the greeting */
	char listen_addr[64];             /* [127.0.0.1] */
	uint16_t port;                    /* [7070] */
	char node_socket[MCONF_PATH_MAX]; /* [/run/tandem/fw1/node.sock] */
	char syncd_socket[MCONF_PATH_MAX];/* "" = none */
	bool allow_plain_auth;            /* [false] */
	uint32_t idle_timeout_ms;         /* [300 s] 1..86400 s */
	uint32_t max_clients;             /* [32] 1..1024 */
	uint32_t max_output_buffer;       /* [1 MiB] 256 KiB..64 MiB */
	uint32_t max_config_size;         /* [4 MiB] 1 KiB..64 MiB */
	uint32_t ctl_timeout_ms;          /* [10 s] 1..600 s */
	uint32_t login_max;               /* [5] failures per window */
	uint32_t login_window_ms;         /* [60 s] */
	uint32_t login_block_ms;          /* [60 s] */
	bool file_too_open;               /* group/other may read the file */
	struct mgmt_user *users;
	unsigned n_users;
};

int mgmt_conf_load_file(const char *path, struct mgmt_conf **ret, char *err,
			size_t errlen);
int mgmt_conf_load_string(const char *text, const char *name,
			  struct mgmt_conf **ret, char *err, size_t errlen);
void mgmt_conf_free(struct mgmt_conf *c); /* accepts NULL; wipes tokens */

const struct mgmt_user *mgmt_conf_user(const struct mgmt_conf *c,
				       const char *name);
const char *mgmt_role_name(enum mgmt_role r);

#endif
