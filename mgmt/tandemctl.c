/*
 * tandemctl.c - command-line client of tandem-mgmt.
 *
 *   tandemctl [options] COMMAND ...     one command, then exit
 *   tandemctl [options]                 interactive (prompt, history, TAB)
 *   tandemctl config push FILE          CONTINUE + the file, dot-stuffed
 *
 * Options: -a HOST:PORT, -u USER, -r (raw protocol lines), -T SECONDS (read
 * timeout), -C SECONDS (connect timeout), -c FILE (client config).
 * Settings: command line > environment (TANDEM_ADDR, TANDEM_USER,
 * TANDEM_TOKEN) > client config (-c FILE, else ~/.config/tandem/tandemctl.conf,
 * else /etc/tandem/tandemctl.conf: `key = value` lines, keys address, user,
 * token, timeout, connect_timeout) > defaults (127.0.0.1:7070, 30 s, 5 s).
 *
 * Exit status: 0 OK, 1 the server answered ERR (message on stderr), 2 usage,
 * config, connection or timeout problem.
 *
 * Must never: put the token on a command line or in an error message, block
 * without a timeout, or print a control byte received from the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#ifdef HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "auth.h"
#include "record.h"
#include "table.h"

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "0.1.0"
#endif

#define LINE_MAX_CLIENT (16u << 20) /* a server line longer than this is an error */
#define BODY_MAX        (64u << 20) /* config file size sent by push/check */
#define HISTORY_MAX     500
#define EXIT_ERR        1
#define EXIT_FAIL       2

struct opts {
	char addr[256];
	char user[64];
	char token[AUTH_TOKEN_MAX * 2 + 1];
	unsigned timeout_s, connect_timeout_s;
	bool raw;
	const char *conf_path;
};

struct conn {
	int fd;
	char *buf;
	size_t start, len, cap;
	char node[64];
	char nonce[AUTH_NONCE_HEX + 1];
	int timeout_ms;
};

struct reply {
	char **lines;
	size_t n, cap;
	int code;        /* 0 OK, -1 CONTINUE, else the ERR code */
	char *text;      /* status text */
};

static void die_usage(void)
{
	fprintf(stderr,
		"usage: tandemctl [-a HOST:PORT] [-u USER] [-r] [-T SEC] [-C SEC] [-c FILE] [COMMAND ...]\n"
		"  COMMAND        e.g. show sessions dport 443; config push FILE; help\n"
		"                 none: interactive\n"
		"  -a HOST:PORT   server [127.0.0.1:7070]      (env TANDEM_ADDR)\n"
		"  -u USER        user to log in as            (env TANDEM_USER)\n"
		"                 the token comes from TANDEM_TOKEN or the config file\n"
		"  -r             raw protocol lines instead of tables\n"
		"  -T SEC         read timeout [30]; -C SEC connect timeout [5]\n"
		"  -c FILE        client config [~/.config/tandem/tandemctl.conf,\n"
		"                 /etc/tandem/tandemctl.conf]: key = value lines\n"
		"                 (address, user, token, timeout, connect_timeout)\n");
	exit(EXIT_FAIL);
}

/* ---------------------------------------------------------------- config */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
		     s[n - 1] == '\r'))
		s[--n] = '\0';
	if (n >= 2 && ((s[0] == '"' && s[n - 1] == '"') ||
		       (s[0] == '\'' && s[n - 1] == '\''))) {
		s[n - 1] = '\0';
		s++;
	}
	return s;
}

static bool parse_secs(const char *v, unsigned *ret)
{
	char *end;
	long x = strtol(v, &end, 10);

	if (*v == '\0' || *end || x < 1 || x > 3600)
		return false;
	*ret = (unsigned)x;
	return true;
}

/* Returns 0, -ENOENT (no such file) or -EINVAL (message printed). */
static int read_conf(const char *path, struct opts *o)
{
	FILE *f = fopen(path, "re");
	char line[512];
	unsigned lineno = 0;

	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *p = trim(line);
		if (!*p || *p == '#')
			continue;
		char *eq = strchr(p, '=');
		if (!eq) {
			fprintf(stderr, "tandemctl: %s:%u: expected key = value\n", path, lineno);
			fclose(f);
			return -EINVAL;
		}
		*eq = '\0';
		char *k = trim(p), *v = trim(eq + 1);
		bool ok = true;
		if (strcmp(k, "address") == 0)
			ok = snprintf(o->addr, sizeof(o->addr), "%s", v) < (int)sizeof(o->addr);
		else if (strcmp(k, "user") == 0)
			ok = snprintf(o->user, sizeof(o->user), "%s", v) < (int)sizeof(o->user);
		else if (strcmp(k, "token") == 0)
			ok = snprintf(o->token, sizeof(o->token), "%s", v) < (int)sizeof(o->token);
		else if (strcmp(k, "timeout") == 0)
			ok = parse_secs(v, &o->timeout_s);
		else if (strcmp(k, "connect_timeout") == 0)
			ok = parse_secs(v, &o->connect_timeout_s);
		else {
			fprintf(stderr, "tandemctl: %s:%u: unknown key '%s' (address, user, "
				"token, timeout, connect_timeout)\n", path, lineno, k);
			fclose(f);
			return -EINVAL;
		}
		if (!ok) {
			fprintf(stderr, "tandemctl: %s:%u: bad value for %s\n", path, lineno, k);
			fclose(f);
			return -EINVAL;
		}
	}
	sodium_memzero(line, sizeof(line));
	fclose(f);
	return 0;
}

static void load_settings(struct opts *o)
{
	if (o->conf_path) {
		int r = read_conf(o->conf_path, o);
		if (r == -ENOENT) {
			fprintf(stderr, "tandemctl: %s: %s\n", o->conf_path, strerror(ENOENT));
			exit(EXIT_FAIL);
		}
		if (r)
			exit(EXIT_FAIL);
	} else {
		char path[512];
		const char *home = getenv("HOME");
		int r = -ENOENT;
		if (home) {
			snprintf(path, sizeof(path), "%s/.config/tandem/tandemctl.conf", home);
			r = read_conf(path, o);
		}
		if (r == -ENOENT)
			r = read_conf("/etc/tandem/tandemctl.conf", o);
		if (r == -EINVAL)
			exit(EXIT_FAIL);
	}
	const char *e;
	if ((e = getenv("TANDEM_ADDR")) && *e)
		snprintf(o->addr, sizeof(o->addr), "%s", e);
	if ((e = getenv("TANDEM_USER")) && *e)
		snprintf(o->user, sizeof(o->user), "%s", e);
	if ((e = getenv("TANDEM_TOKEN")) && *e)
		snprintf(o->token, sizeof(o->token), "%s", e);
}

/* ---------------------------------------------------------------- connection */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "host:port", "[v6]:port", "host" -> host, port */
static int split_addr(const char *a, char *host, size_t hostlen, char *port,
		      size_t portlen)
{
	const char *colon;

	if (a[0] == '[') {
		const char *end = strchr(a, ']');
		if (!end || (size_t)(end - a - 1) >= hostlen)
			return -EINVAL;
		memcpy(host, a + 1, (size_t)(end - a - 1));
		host[end - a - 1] = '\0';
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return -EINVAL;
	} else {
		colon = strrchr(a, ':');
		if (colon && strchr(a, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		size_t n = colon ? (size_t)(colon - a) : strlen(a);
		if (n >= hostlen)
			return -EINVAL;
		memcpy(host, a, n);
		host[n] = '\0';
	}
	snprintf(port, portlen, "%s", colon && colon[1] ? colon + 1 : "7070");
	return 0;
}

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int r = poll(&p, 1, timeout_ms);
	if (r <= 0) {
		close(fd);
		return r == 0 ? -ETIMEDOUT : -errno;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		close(fd);
		return -err;
	}
	return fd;
}

static int conn_open(struct conn *c, const struct opts *o)
{
	char host[256], port[32];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -ETIMEDOUT;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = (int)o->timeout_s * 1000;
	if (split_addr(o->addr, host, sizeof(host), port, sizeof(port))) {
		fprintf(stderr, "tandemctl: bad address '%s' (HOST:PORT)\n", o->addr);
		return -EINVAL;
	}
	int r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		fprintf(stderr, "tandemctl: %s: %s\n", o->addr, gai_strerror(r));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, (int)o->connect_timeout_s * 1000);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "tandemctl: cannot connect to %s: %s\n", o->addr,
			fd == -ETIMEDOUT ? "connect timeout" : strerror(-fd));
		return fd;
	}
	c->fd = fd;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->start = c->len = c->cap = 0;
}

/* Next line (no LF/CR), valid until the next call. 0, -ETIMEDOUT,
 * -ECONNRESET (closed), -E2BIG. */
static int conn_line(struct conn *c, char **ret)
{
	long long deadline = now_ms() + c->timeout_ms;

	for (;;) {
		char *nl = c->len > c->start ?
			   memchr(c->buf + c->start, '\n', c->len - c->start) : NULL;
		if (nl) {
			char *line = c->buf + c->start;
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			c->start = (size_t)(nl - c->buf) + 1;
			*ret = line;
			return 0;
		}
		if (c->len - c->start > LINE_MAX_CLIENT)
			return -E2BIG;
		if (c->start > 0 && c->start == c->len)
			c->start = c->len = 0;
		if (c->start > c->cap / 2) {
			memmove(c->buf, c->buf + c->start, c->len - c->start);
			c->len -= c->start;
			c->start = 0;
		}
		if (c->cap - c->len < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			char *b = realloc(c->buf, cap + 1);
			if (!b)
				return -ENOMEM;
			c->buf = b;
			c->cap = cap;
		}
		long long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (c->len > c->start) {
				/* A last line without LF. */
				c->buf[c->len] = '\0';
				*ret = c->buf + c->start;
				c->start = c->len;
				return 0;
			}
			return -ECONNRESET;
		}
		c->len += (size_t)n;
		deadline = now_ms() + c->timeout_ms; /* data moved */
	}
}

static int conn_send(struct conn *c, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = c->fd, .events = POLLOUT};
			int r = poll(&p, 1, c->timeout_ms);
			if (r == 0)
				return -ETIMEDOUT;
			continue;
		}
		return -errno;
	}
	return 0;
}

static const char *conn_errstr(int r)
{
	switch (r) {
	case -ETIMEDOUT: return "read timeout";
	case -ECONNRESET: return "connection closed by the server";
	case -E2BIG: return "line from the server too long";
	default: return strerror(-r);
	}
}

/* ---------------------------------------------------------------- replies */

static void reply_free(struct reply *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->lines[i]);
	free(r->lines);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/* Reads data lines up to the status line; raw: prints them as they come. */
static int read_reply(struct conn *c, struct reply *r, bool raw)
{
	char *line;
	int rc;

	memset(r, 0, sizeof(*r));
	while ((rc = conn_line(c, &line)) == 0) {
		int code = 0;
		const char *text;
		int st = rec_status(line, &code, &text);
		if (st || strcmp(line, "CONTINUE") == 0) {
			r->code = st == 1 ? 0 : st == 2 ? code : -1;
			r->text = strdup(st ? text : "");
			return r->text ? 0 : -ENOMEM;
		}
		if (raw) {
			table_put_safe(stdout, line);
			fputc('\n', stdout);
			continue;
		}
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			char **l = realloc(r->lines, cap * sizeof(*l));
			if (!l)
				return -ENOMEM;
			r->lines = l;
			r->cap = cap;
		}
		if (!(r->lines[r->n] = strdup(line)))
			return -ENOMEM;
		r->n++;
	}
	return rc;
}

/* ---------------------------------------------------------------- output */

#define FIELDS_MAX 128

struct rec {
	char *copy;
	char *word;
	struct rec_field f[FIELDS_MAX];
	unsigned n;
};

static bool rec_load(const char *line, struct rec *r)
{
	r->copy = strdup(line);
	if (!r->copy)
		return false;
	if (rec_parse(r->copy, &r->word, r->f, FIELDS_MAX, &r->n)) {
		free(r->copy);
		r->copy = NULL;
		return false;
	}
	return true;
}

static const char *rec_get(const struct rec *r, const char *key)
{
	for (unsigned i = 0; i < r->n; i++)
		if (strcmp(r->f[i].key, key) == 0)
			return r->f[i].val;
	return NULL;
}

static void print_vertical(const struct rec *r)
{
	size_t w = 0;

	for (unsigned i = 0; i < r->n; i++)
		if (strlen(r->f[i].key) > w)
			w = strlen(r->f[i].key);
	printf("%s\n", r->word);
	for (unsigned i = 0; i < r->n; i++) {
		printf("  %-*s  ", (int)w, r->f[i].key);
		table_put_safe(stdout, r->f[i].val);
		fputc('\n', stdout);
	}
}

static void print_text(const char *s)
{
	for (; *s; s++)
		fputc(((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f ? '?' : *s,
		      stdout);
	fputc('\n', stdout);
}

/* Records [from, to) of one word. */
static void print_group(struct rec *recs, size_t from, size_t to, bool single_session)
{
	struct rec *r0 = &recs[from];

	/* Text lines (show config, policy text): the text itself. */
	if (r0->n == 2 && strcmp(r0->f[0].key, "line") == 0 &&
	    strcmp(r0->f[1].key, "text") == 0) {
		for (size_t i = from; i < to; i++)
			print_text(rec_get(&recs[i], "text") ? rec_get(&recs[i], "text") : "");
		return;
	}
	if (strcmp(r0->word, "session") == 0 && !single_session) {
		static const char *const hdr[] = {"ID", "PROTO", "SOURCE", "DESTINATION",
			"STATE", "EXPIRES", "PKTS", "BYTES", "RULE", "ORIGIN"};
		static const char *const keys[] = {"id", "proto", "src", "dst", "state",
			"expires", "pkts", "bytes", "rule", "origin"};
		struct table *t;
		if (table_new(hdr, 10, &t))
			return;
		for (size_t i = from; i < to; i++) {
			const char *cells[10];
			for (int k = 0; k < 10; k++)
				cells[k] = rec_get(&recs[i], keys[k]);
			table_add(t, cells);
		}
		table_print(t, stdout);
		table_free(t);
		return;
	}
	if (to - from == 1) {
		print_vertical(r0);
		return;
	}
	/* Columns: every key, in order of first appearance. */
	const char *keys[FIELDS_MAX];
	unsigned nk = 0;
	for (size_t i = from; i < to; i++)
		for (unsigned k = 0; k < recs[i].n; k++) {
			unsigned j = 0;
			while (j < nk && strcmp(keys[j], recs[i].f[k].key) != 0)
				j++;
			if (j == nk && nk < FIELDS_MAX)
				keys[nk++] = recs[i].f[k].key;
		}
	if (!nk)
		return;
	char *hdr[FIELDS_MAX];
	for (unsigned k = 0; k < nk; k++) {
		hdr[k] = strdup(keys[k]);
		for (char *p = hdr[k]; p && *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p == '_' ? ' ' : *p);
	}
	struct table *t;
	if (table_new((const char *const *)hdr, nk, &t) == 0) {
		for (size_t i = from; i < to; i++) {
			const char *cells[FIELDS_MAX];
			for (unsigned k = 0; k < nk; k++)
				cells[k] = rec_get(&recs[i], keys[k]);
			table_add(t, cells);
		}
		table_print(t, stdout);
		table_free(t);
	}
	for (unsigned k = 0; k < nk; k++)
		free(hdr[k]);
}

static void print_human(const struct reply *rp, bool single_session)
{
	struct rec *recs = calloc(rp->n ? rp->n : 1, sizeof(*recs));
	size_t i = 0;

	if (!recs)
		return;
	while (i < rp->n) {
		if (!rec_load(rp->lines[i], &recs[i])) {
			print_text(rp->lines[i]); /* metrics and other plain lines */
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < rp->n && rec_load(rp->lines[j], &recs[j])) {
			if (strcmp(recs[j].word, recs[i].word) != 0) {
				free(recs[j].copy);
				recs[j].copy = NULL;
				break;
			}
			j++;
		}
		print_group(recs, i, j, single_session);
		for (size_t k = i; k < j; k++)
			free(recs[k].copy);
		i = j;
	}
	free(recs);
}

/* ---------------------------------------------------------------- session */

struct session {
	struct opts *o;
	struct conn c;
	bool open;
	bool interactive; /* standard input holds commands, not a config */
};

static int session_open(struct session *s)
{
	char *line;
	int r;

	if (s->open)
		return 0;
	if ((r = conn_open(&s->c, s->o)))
		return EXIT_FAIL;
	if ((r = conn_line(&s->c, &line))) {
		fprintf(stderr, "tandemctl: no greeting: %s\n", conn_errstr(r));
		conn_close(&s->c);
		return EXIT_FAIL;
	}
	int code;
	const char *text;
	if (rec_status(line, &code, &text) == 2) {
		fprintf(stderr, "tandemctl: ERR %d %s\n", code, text);
		conn_close(&s->c);
		return EXIT_ERR;
	}
	/* TANDEM <version> node=<name> nonce=<hex> */
	char *nonce = strstr(line, " nonce=");
	char *node = strstr(line, " node=");
	if (strncmp(line, "TANDEM ", 7) != 0 || !nonce ||
	    strspn(nonce + 7, "0123456789abcdef") != AUTH_NONCE_HEX) {
		fprintf(stderr, "tandemctl: not a tandem-mgmt greeting\n");
		conn_close(&s->c);
		return EXIT_FAIL;
	}
	memcpy(s->c.nonce, nonce + 7, AUTH_NONCE_HEX);
	s->c.nonce[AUTH_NONCE_HEX] = '\0';
	if (node)
		sscanf(node + 6, "%63[^ ]", s->c.node);
	s->open = true;
	if (!s->o->user[0])
		return 0; /* only help and quit will work */
	if (!s->o->token[0]) {
		fprintf(stderr, "tandemctl: user %s given but no token (TANDEM_TOKEN or "
			"token in the config file)\n", s->o->user);
		return EXIT_FAIL;
	}
	uint8_t key[AUTH_TOKEN_MAX];
	size_t klen;
	if (auth_hex_decode(s->o->token, key, sizeof(key), &klen) || klen < AUTH_TOKEN_MIN) {
		fprintf(stderr, "tandemctl: the token must be hex of %d..%d bytes\n",
			AUTH_TOKEN_MIN, AUTH_TOKEN_MAX);
		return EXIT_FAIL;
	}
	char mac[AUTH_MAC_HEX + 1], cmd[256];
	auth_hmac_hex(key, klen, s->c.nonce, mac);
	sodium_memzero(key, sizeof(key));
	snprintf(cmd, sizeof(cmd), "auth %s %s\n", s->o->user, mac);
	struct reply rp;
	if ((r = conn_send(&s->c, cmd, strlen(cmd))) || (r = read_reply(&s->c, &rp, false))) {
		fprintf(stderr, "tandemctl: auth: %s\n", conn_errstr(r));
		return EXIT_FAIL;
	}
	int rc = 0;
	if (rp.code) {
		fprintf(stderr, "tandemctl: ERR %d %s\n", rp.code, rp.text);
		rc = EXIT_ERR;
	}
	reply_free(&rp);
	return rc;
}

static void session_close(struct session *s)
{
	if (s->open)
		conn_close(&s->c);
	s->open = false;
}

/* The file (or stdin for "-"), dot-stuffed and ended by ".". */
static int build_body(const char *path, struct rec_buf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char chunk[65536];
	struct rec_buf raw;
	size_t n;

	if (!f) {
		fprintf(stderr, "tandemctl: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	rec_buf_init(&raw);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rec_buf_append(&raw, chunk, n);
		if (raw.len > BODY_MAX)
			break;
	}
	if (f != stdin)
		fclose(f);
	if (raw.err || raw.len > BODY_MAX) {
		fprintf(stderr, "tandemctl: %s: larger than %u bytes\n", path, BODY_MAX);
		rec_buf_free(&raw);
		return -EFBIG;
	}
	for (size_t i = 0; i < raw.len;) {
		char *nl = memchr(raw.p + i, '\n', raw.len - i);
		size_t len = nl ? (size_t)(nl - (raw.p + i)) : raw.len - i;
		if (raw.p[i] == '.')
			rec_buf_append(b, ".", 1);
		rec_buf_append(b, raw.p + i, len);
		rec_buf_append(b, "\n", 1);
		i += len + 1;
	}
	rec_buf_append(b, ".\n", 2);
	rec_buf_free(&raw);
	return b->err;
}

/*
 * Runs one command given as words. Returns the exit status. *lost is set
 * when the connection is gone (the next command reconnects).
 */
static int run_command(struct session *s, int argc, char **argv, bool *lost)
{
	struct rec_buf cmd, body;
	const char *file = NULL;
	int r, rc = 0;

	*lost = false;
	if (argc == 0)
		return 0;
	bool is_config = argc >= 2 && strcasecmp(argv[0], "config") == 0 &&
			 (strcasecmp(argv[1], "push") == 0 || strcasecmp(argv[1], "check") == 0);
	if (is_config) {
		if (argc > 3) {
			fprintf(stderr, "tandemctl: usage: config push|check [FILE|-]\n");
			return EXIT_FAIL;
		}
		file = argc == 3 ? argv[2] : "-";
		if (s->interactive && strcmp(file, "-") == 0) {
			fprintf(stderr, "tandemctl: usage: config push|check FILE\n");
			return EXIT_FAIL;
		}
		argc = 2;
	}
	rec_buf_init(&cmd);
	rec_buf_init(&body);
	for (int i = 0; i < argc; i++) {
		if (i)
			rec_buf_append(&cmd, " ", 1);
		rec_buf_puts(&cmd, argv[i]);
	}
	rec_buf_append(&cmd, "\n", 1);
	if (is_config && build_body(file, &body)) {
		rc = EXIT_FAIL;
		goto out;
	}
	if ((rc = session_open(s))) {
		*lost = true;
		goto out;
	}
	struct reply rp;
	if ((r = conn_send(&s->c, cmd.p, cmd.len)) ||
	    (r = read_reply(&s->c, &rp, s->o->raw))) {
		fprintf(stderr, "tandemctl: %s\n", conn_errstr(r));
		*lost = true;
		rc = EXIT_FAIL;
		goto out;
	}
	if (rp.code == -1) { /* CONTINUE */
		reply_free(&rp);
		if (!is_config) {
			fprintf(stderr, "tandemctl: unexpected CONTINUE\n");
			*lost = true;
			rc = EXIT_FAIL;
			goto out;
		}
		if ((r = conn_send(&s->c, body.p, body.len)) ||
		    (r = read_reply(&s->c, &rp, s->o->raw))) {
			fprintf(stderr, "tandemctl: %s\n", conn_errstr(r));
			*lost = true;
			rc = EXIT_FAIL;
			goto out;
		}
	}
	if (!s->o->raw) {
		bool single = argc >= 3 && strcasecmp(argv[0], "show") == 0 &&
			      strcasecmp(argv[1], "session") == 0;
		print_human(&rp, single);
	}
	if (rp.code) {
		fflush(stdout);
		fprintf(stderr, "ERR %d %s\n", rp.code, rp.text);
		rc = EXIT_ERR;
	} else if (s->o->raw) {
		printf("OK%s%s\n", *rp.text ? " " : "", rp.text);
	} else if (*rp.text) {
		printf("%s\n", rp.text);
	}
	fflush(stdout);
	reply_free(&rp);
out:
	rec_buf_free(&cmd);
	rec_buf_free(&body);
	return rc;
}

/* ---------------------------------------------------------------- interactive */

static char *history[HISTORY_MAX];
static unsigned hist_n, hist_base = 1; /* number of history[0] */

static void hist_add(const char *line)
{
	if (hist_n == HISTORY_MAX) {
		free(history[0]);
		memmove(history, history + 1, sizeof(history[0]) * (HISTORY_MAX - 1));
		hist_n--;
		hist_base++;
	}
	history[hist_n] = strdup(line);
	if (history[hist_n])
		hist_n++;
#ifdef HAVE_LIBEDIT
	add_history(line);
#endif
}

static int split_words(char *line, char **argv, int max)
{
	int n = 0;

	for (char *p = strtok(line, " \t"); p && n < max; p = strtok(NULL, " \t"))
		argv[n++] = p;
	return n;
}

/* Command names from `help`, for TAB completion. */
static char *cmd_names[64];
static unsigned n_cmd_names;

static void learn_commands(struct session *s)
{
	bool lost;
	struct reply rp;

	(void)lost;
	if (!s->open || conn_send(&s->c, "help\n", 5) || read_reply(&s->c, &rp, false))
		return;
	for (size_t i = 0; i < rp.n && n_cmd_names < 64; i++) {
		struct rec r;
		if (!rec_load(rp.lines[i], &r))
			continue;
		const char *name = rec_get(&r, "name");
		if (name && strcmp(r.word, "command") == 0)
			cmd_names[n_cmd_names++] = strdup(name);
		free(r.copy);
	}
	reply_free(&rp);
}

#ifdef HAVE_LIBEDIT
static const char *const filter_words[] = {"proto", "src", "dst", "sport", "dport",
	"iface", "rule", "state", "origin", "limit", "all", NULL};
static char *cands[128];
static unsigned n_cands, cand_i;

static void cand_add(const char *w, const char *text)
{
	if (strncmp(w, text, strlen(text)) != 0 || n_cands == 128)
		return;
	for (unsigned i = 0; i < n_cands; i++)
		if (strcmp(cands[i], w) == 0)
			return;
	cands[n_cands++] = strdup(w);
}

static char *cand_next(const char *text, int state)
{
	(void)text;
	if (!state)
		cand_i = 0;
	while (cand_i < n_cands) {
		char *w = cands[cand_i];
		cands[cand_i++] = NULL;
		return w; /* readline frees it */
	}
	return NULL;
}

/* The next word of every command whose first words are those typed. */
static char **complete(const char *text, int start, int end)
{
	char typed[1024], *words[32];
	(void)end;
	for (unsigned i = 0; i < n_cands; i++)
		free(cands[i]);
	n_cands = 0;
	snprintf(typed, sizeof(typed), "%.*s", start, rl_line_buffer);
	int nw = split_words(typed, words, 32);
	for (unsigned c = 0; c < n_cmd_names; c++) {
		char name[128], *cw[16];
		snprintf(name, sizeof(name), "%s", cmd_names[c]);
		int nc = split_words(name, cw, 16);
		int k = 0;
		while (k < nw && k < nc && strcasecmp(words[k], cw[k]) == 0)
			k++;
		if (k == nw && k < nc)
			cand_add(cw[k], text);
		else if (k == nc && k <= nw && (strstr(cmd_names[c], "sessions")))
			for (int f = 0; filter_words[f]; f++)
				cand_add(filter_words[f], text);
	}
	rl_attempted_completion_over = 1; /* no file names */
	return rl_completion_matches(text, cand_next);
}
#endif

static char *read_input(const char *prompt, bool tty)
{
#ifdef HAVE_LIBEDIT
	if (tty)
		return readline(prompt);
#endif
	static char buf[65536 + 2];
	if (tty) {
		fputs(prompt, stdout);
		fflush(stdout);
	}
	if (!fgets(buf, sizeof(buf), stdin))
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static int interactive(struct session *s)
{
	bool tty = isatty(STDIN_FILENO);
	char prompt[96];
	int last = 0;

	s->interactive = true;
	if (session_open(s) == EXIT_FAIL)
		return EXIT_FAIL;
	learn_commands(s);
#ifdef HAVE_LIBEDIT
	rl_attempted_completion_function = complete;
#endif
	for (;;) {
		snprintf(prompt, sizeof(prompt), "tandem%s%s%s> ", s->c.node[0] ? "(" : "",
			 s->c.node, s->c.node[0] ? ")" : "");
		char *in = read_input(prompt, tty);
		if (!in)
			break;
		char *line = in;
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line) {
			free(in);
			continue;
		}
		/* !N and !! repeat a command from the history. */
		if (line[0] == '!') {
			unsigned idx = line[1] == '!' ? hist_base + hist_n - 1 :
				       (unsigned)strtoul(line + 1, NULL, 10);
			if (!hist_n || idx < hist_base || idx >= hist_base + hist_n) {
				fprintf(stderr, "tandemctl: no history entry %s\n", line + 1);
				free(in);
				continue;
			}
			char *rep = strdup(history[idx - hist_base]);
			free(in);
			if (!rep)
				continue;
			in = line = rep;
			printf("%s\n", line);
		}
		hist_add(line);
		if (strcmp(line, "history") == 0) {
			for (unsigned i = 0; i < hist_n; i++)
				printf("%5u  %s\n", hist_base + i, history[i]);
			free(in);
			continue;
		}
		if (strcmp(line, "exit") == 0 || strcmp(line, "quit") == 0) {
			free(in);
			break;
		}
		char *argv[256];
		int argc = split_words(line, argv, 256);
		bool lost;
		last = run_command(s, argc, argv, &lost);
		free(in);
		if (lost)
			session_close(s); /* the next command reconnects */
	}
	for (unsigned i = 0; i < hist_n; i++)
		free(history[i]);
	for (unsigned i = 0; i < n_cmd_names; i++)
		free(cmd_names[i]);
	return tty ? 0 : last;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct opts o = {.timeout_s = 30, .connect_timeout_s = 5};
	struct opts cli = {0};
	int opt;

	snprintf(o.addr, sizeof(o.addr), "127.0.0.1:7070");
	/* '+': options end at the first command word (show -r is a command). */
	while ((opt = getopt(argc, argv, "+a:u:rT:C:c:hV")) != -1) {
		switch (opt) {
		case 'a': snprintf(cli.addr, sizeof(cli.addr), "%s", optarg); break;
		case 'u': snprintf(cli.user, sizeof(cli.user), "%s", optarg); break;
		case 'r': o.raw = true; break;
		case 'T':
			if (!parse_secs(optarg, &cli.timeout_s))
				die_usage();
			break;
		case 'C':
			if (!parse_secs(optarg, &cli.connect_timeout_s))
				die_usage();
			break;
		case 'c': o.conf_path = optarg; break;
		case 'V': printf("tandemctl %s\n", TANDEM_VERSION); return 0;
		default: die_usage();
		}
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "tandemctl: libsodium cannot start\n");
		return EXIT_FAIL;
	}
	load_settings(&o);
	if (cli.addr[0])
		memcpy(o.addr, cli.addr, sizeof(o.addr));
	if (cli.user[0])
		memcpy(o.user, cli.user, sizeof(o.user));
	if (cli.timeout_s)
		o.timeout_s = cli.timeout_s;
	if (cli.connect_timeout_s)
		o.connect_timeout_s = cli.connect_timeout_s;
	signal(SIGPIPE, SIG_IGN);

	struct session s = {.o = &o};
	int rc;
	if (optind == argc) {
		rc = interactive(&s);
	} else {
		bool lost;
		rc = run_command(&s, argc - optind, argv + optind, &lost);
	}
	session_close(&s);
	sodium_memzero(o.token, sizeof(o.token));
	return rc;
}
