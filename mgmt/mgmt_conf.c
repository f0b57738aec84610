/*
 * mgmt_conf.c - load and validate conf/mgmt.conf (libconfig 1.5).
 *
 * Every setting is optional except users; every name is known (a typo is an
 * error, not ignored); every value has its type and range checked; user
 * names are unique; tokens are hex of 16..64 bytes.
 *
 * Must never: return a partly built config, or put a token in an error
 * message.
 */
#include "mgmt_conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>
#include <sodium.h>

#define CONF_FILE_MAX (1u << 20)

struct ld {
	const char *file;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 4, 5)))
static int fail(struct ld *L, const config_setting_t *s, const char *path,
		const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(L->err, L->errlen, "%s:%u: %s: %s", L->file,
		 s ? config_setting_source_line(s) : 0, path, msg);
	return -EINVAL;
}

/* Every member of group s must be one of the NULL-terminated names. */
static int known(struct ld *L, const config_setting_t *s, const char *path,
		 const char *const *names)
{
	int n = config_setting_length(s);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
		const char *nm = config_setting_name(m);
		bool ok = false;
		for (const char *const *k = names; *k; k++)
			if (nm && strcmp(nm, *k) == 0)
				ok = true;
		if (!ok) {
			char full[128], list[256] = "";
			snprintf(full, sizeof(full), "%s%s%s", path,
				 *path ? "." : "", nm ? nm : "?");
			for (const char *const *k = names; *k; k++) {
				strncat(list, *k, sizeof(list) - strlen(list) - 1);
				if (k[1])
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
			}
			return fail(L, m, full, "unknown setting (known: %s)", list);
		}
	}
	return 0;
}

static int get_int(struct ld *L, const config_setting_t *g, const char *name,
		   const char *path, long long lo, long long hi, uint32_t *v)
{
	const config_setting_t *s = config_setting_get_member(g, name);

	if (!s)
		return 0;
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return fail(L, s, path, "must be an integer");
	long long x = config_setting_get_int64(s);
	if (t == CONFIG_TYPE_INT)
		x = config_setting_get_int(s);
	if (x < lo || x > hi)
		return fail(L, s, path, "%lld out of range %lld..%lld", x, lo, hi);
	*v = (uint32_t)x;
	return 0;
}

static int get_bool(struct ld *L, const config_setting_t *g, const char *name,
		    const char *path, bool *v)
{
	const config_setting_t *s = config_setting_get_member(g, name);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(L, s, path, "must be true or false");
	*v = config_setting_get_bool(s);
	return 0;
}

static int get_str(struct ld *L, const config_setting_t *g, const char *name,
		   const char *path, char *out, size_t outlen, bool empty_ok)
{
	const config_setting_t *s = config_setting_get_member(g, name);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(L, s, path, "must be a string");
	const char *v = config_setting_get_string(s);
	size_t n = strlen(v);
	if (n >= outlen)
		return fail(L, s, path, "longer than %zu characters", outlen - 1);
	if (!n && !empty_ok)
		return fail(L, s, path, "must not be empty");
	memcpy(out, v, n + 1);
	return 0;
}

static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		      *s == '-'))
			return false;
	return true;
}

static int load_users(struct ld *L, const config_setting_t *root,
		      struct mgmt_conf *c)
{
	static const char *const user_keys[] = {"name", "token", "role", NULL};
	const config_setting_t *us = config_setting_get_member(root, "users");

	if (!us)
		return fail(L, root, "users", "required (at least one user)");
	if (!config_setting_is_list(us) && !config_setting_is_array(us))
		return fail(L, us, "users", "must be a list ( { name; token; role; }, ... )");
	int n = config_setting_length(us);
	if (n < 1 || n > 256)
		return fail(L, us, "users", "1..256 users");
	c->users = calloc((size_t)n, sizeof(*c->users));
	if (!c->users)
		return -ENOMEM;
	c->n_users = (unsigned)n; /* all wiped on free, even after an error */
	for (int i = 0; i < n; i++) {
		const config_setting_t *u = config_setting_get_elem(us, (unsigned)i);
		struct mgmt_user *mu = &c->users[i];
		char path[64], tok[AUTH_TOKEN_MAX * 2 + 2] = "", role[16] = "";
		int r;

		snprintf(path, sizeof(path), "users.[%d]", i);
		if (!config_setting_is_group(u))
			return fail(L, u, path, "must be a group { name; token; role; }");
		if ((r = known(L, u, path, user_keys)))
			return r;
		snprintf(path, sizeof(path), "users.[%d].name", i);
		if ((r = get_str(L, u, "name", path, mu->name, sizeof(mu->name), false)))
			return r;
		if (!mu->name[0])
			return fail(L, u, path, "required");
		if (!name_ok(mu->name))
			return fail(L, u, path, "only A-Z a-z 0-9 _ . - allowed");
		for (int j = 0; j < i; j++)
			if (strcmp(c->users[j].name, mu->name) == 0)
				return fail(L, u, path, "user '%s' defined twice", mu->name);
		snprintf(path, sizeof(path), "users.[%d].token", i);
		r = get_str(L, u, "token", path, tok, sizeof(tok), false);
		if (r) {
			/* The message names the length, never the value. */
			snprintf(L->err, L->errlen, "%s:%u: %s: hex of %d..%d bytes",
				 L->file, config_setting_source_line(u), path,
				 AUTH_TOKEN_MIN, AUTH_TOKEN_MAX);
			return -EINVAL;
		}
		if (!tok[0])
			return fail(L, u, path, "required");
		if (auth_hex_decode(tok, mu->token, sizeof(mu->token), &mu->token_len) ||
		    mu->token_len < AUTH_TOKEN_MIN) {
			sodium_memzero(tok, sizeof(tok));
			return fail(L, u, path, "must be hex of %d..%d bytes (%d..%d characters)",
				    AUTH_TOKEN_MIN, AUTH_TOKEN_MAX,
				    2 * AUTH_TOKEN_MIN, 2 * AUTH_TOKEN_MAX);
		}
		sodium_memzero(tok, sizeof(tok));
		snprintf(path, sizeof(path), "users.[%d].role", i);
		if ((r = get_str(L, u, "role", path, role, sizeof(role), false)))
			return r;
		if (!role[0] || strcmp(role, "read-only") == 0)
			mu->role = ROLE_READ_ONLY;
		else if (strcmp(role, "admin") == 0)
			mu->role = ROLE_ADMIN;
		else
			return fail(L, u, path, "unknown role '%s' (admin, read-only)", role);
	}
	return 0;
}

static int load(struct ld *L, config_t *cf, struct mgmt_conf *c)
{
	static const char *const top[] = {
		"name", "listen", "node_socket", "syncd_socket", "allow_plain_auth",
		"idle_timeout", "max_clients", "max_output_buffer",
		"max_config_size", "ctl_timeout", "login_failures", "users", NULL};
	static const char *const listen_keys[] = {"address", "port", NULL};
	static const char *const lf_keys[] = {"max", "window", "block", NULL};
	const config_setting_t *root = config_root_setting(cf);
	uint32_t v;
	int r;

	if ((r = known(L, root, "", top)))
		return r;
	if ((r = get_str(L, root, "name", "name", c->name, sizeof(c->name), false)))
		return r;
	if (!name_ok(c->name))
		return fail(L, config_setting_get_member(root, "name"), "name",
			    "only A-Z a-z 0-9 _ . - allowed");

	const config_setting_t *ls = config_setting_get_member(root, "listen");
	if (ls) {
		if (!config_setting_is_group(ls))
			return fail(L, ls, "listen", "must be a group { address; port; }");
		if ((r = known(L, ls, "listen", listen_keys)))
			return r;
		if ((r = get_str(L, ls, "address", "listen.address", c->listen_addr,
				 sizeof(c->listen_addr), false)))
			return r;
		v = c->port;
		if ((r = get_int(L, ls, "port", "listen.port", 1, 65535, &v)))
			return r;
		c->port = (uint16_t)v;
	}
	if ((r = get_str(L, root, "node_socket", "node_socket", c->node_socket,
			 sizeof(c->node_socket), false)))
		return r;
	if ((r = get_str(L, root, "syncd_socket", "syncd_socket", c->syncd_socket,
			 sizeof(c->syncd_socket), true)))
		return r;
	if ((r = get_bool(L, root, "allow_plain_auth", "allow_plain_auth",
			  &c->allow_plain_auth)))
		return r;
	v = c->idle_timeout_ms / 1000;
	if ((r = get_int(L, root, "idle_timeout", "idle_timeout", 1, 86400, &v)))
		return r;
	c->idle_timeout_ms = v * 1000;
	if ((r = get_int(L, root, "max_clients", "max_clients", 1, 1024,
			 &c->max_clients)))
		return r;
	if ((r = get_int(L, root, "max_output_buffer", "max_output_buffer",
			 256 << 10, 64 << 20, &c->max_output_buffer)))
		return r;
	if ((r = get_int(L, root, "max_config_size", "max_config_size", 1 << 10,
			 64 << 20, &c->max_config_size)))
		return r;
	v = c->ctl_timeout_ms / 1000;
	if ((r = get_int(L, root, "ctl_timeout", "ctl_timeout", 1, 600, &v)))
		return r;
	c->ctl_timeout_ms = v * 1000;

	const config_setting_t *lf = config_setting_get_member(root, "login_failures");
	if (lf) {
		if (!config_setting_is_group(lf))
			return fail(L, lf, "login_failures", "must be a group { max; window; block; }");
		if ((r = known(L, lf, "login_failures", lf_keys)))
			return r;
		if ((r = get_int(L, lf, "max", "login_failures.max", 1, 1000,
				 &c->login_max)))
			return r;
		v = c->login_window_ms / 1000;
		if ((r = get_int(L, lf, "window", "login_failures.window", 1, 86400, &v)))
			return r;
		c->login_window_ms = v * 1000;
		v = c->login_block_ms / 1000;
		if ((r = get_int(L, lf, "block", "login_failures.block", 1, 86400, &v)))
			return r;
		c->login_block_ms = v * 1000;
	}
	return load_users(L, root, c);
}

static void defaults(struct mgmt_conf *c)
{
	strcpy(c->name, "fw1");
	strcpy(c->listen_addr, "127.0.0.1");
	c->port = 7070;
	strcpy(c->node_socket, "/run/tandem/fw1/node.sock");
	c->idle_timeout_ms = 300 * 1000;
	c->max_clients = 32;
	c->max_output_buffer = 1 << 20;
	c->max_config_size = 4 << 20;
	c->ctl_timeout_ms = 10 * 1000;
	c->login_max = 5;
	c->login_window_ms = 60 * 1000;
	c->login_block_ms = 60 * 1000;
}

static int load_text(const char *text, const char *name, bool too_open,
		     struct mgmt_conf **ret, char *err, size_t errlen)
{
	struct ld L = {.file = name, .err = err, .errlen = errlen};
	struct mgmt_conf *c = calloc(1, sizeof(*c));
	config_t cf;
	int r;

	if (!c)
		return -ENOMEM;
	defaults(c);
	c->file_too_open = too_open;
	config_init(&cf);
	if (!config_read_string(&cf, text)) {
		snprintf(err, errlen, "%s:%d: syntax: %s", name,
			 config_error_line(&cf), config_error_text(&cf));
		r = -EINVAL;
	} else {
		r = load(&L, &cf, c);
	}
	config_destroy(&cf);
	if (r) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "%s: out of memory", name);
		mgmt_conf_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int mgmt_conf_load_string(const char *text, const char *name,
			  struct mgmt_conf **ret, char *err, size_t errlen)
{
	return load_text(text, name, false, ret, err, errlen);
}

int mgmt_conf_load_file(const char *path, struct mgmt_conf **ret, char *err,
			size_t errlen)
{
	struct stat st;
	FILE *f = fopen(path, "re");

	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fileno(f), &st) || st.st_size > CONF_FILE_MAX) {
		fclose(f);
		snprintf(err, errlen, "%s: not a file or larger than %u bytes",
			 path, CONF_FILE_MAX);
		return -EINVAL;
	}
	char *text = malloc((size_t)st.st_size + 1);
	if (!text) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(text, 1, (size_t)st.st_size, f);
	fclose(f);
	text[n] = '\0';
	int r = load_text(text, path, (st.st_mode & 077) != 0, ret, err, errlen);
	sodium_memzero(text, n);
	free(text);
	return r;
}

void mgmt_conf_free(struct mgmt_conf *c)
{
	if (!c)
		return;
	if (c->users) {
		sodium_memzero(c->users, sizeof(*c->users) * c->n_users);
		free(c->users);
	}
	free(c);
}

const struct mgmt_user *mgmt_conf_user(const struct mgmt_conf *c,
				       const char *name)
{
	for (unsigned i = 0; i < c->n_users; i++)
		if (strcmp(c->users[i].name, name) == 0)
			return &c->users[i];
	return NULL;
}

const char *mgmt_role_name(enum mgmt_role r)
{
	return r == ROLE_ADMIN ? "admin" : "read-only";
}
