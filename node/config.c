/*
 * config.c - load and validate the node's configuration (libconfig 1.5).
 *
 * The whole file is parsed and checked into a fresh struct tandem_config;
 * the first problem found ends the load with one message
 * "FILE:LINE: SETTING: reason" and every piece built so far is freed, so a
 * caller's running config is never touched by a bad file (a push is a
 * transaction, as in pf's begin/commit).
 *
 * Checks: every setting name is known (typos are errors, not silently
 * ignored), every value has the right type and lies in its documented range,
 * names are unique, references (zones, address and service objects) resolve,
 * object references have no cycle, prefixes have no host bits set.
 *
 * Must never: accept a value it could not represent exactly (libconfig 1.5
 * silently truncates integer literals beyond 32 bits, so the text is scanned
 * for those first), read any file but the one named (@include is refused:
 * a config pushed over the network must not make the node read local files),
 * or return a partly built config.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#define CFG_FILE_MAX   (64u << 20) /* refuse config files above 64 MiB */
#define PATH_LEN       192         /* setting paths in messages */
#define OBJ_DEPTH_MAX  32          /* object nesting (bounds recursion) */
#define IFNAME_MAX     15          /* IFNAMSIZ - 1 */

/* ------------------------------------------------------------------ */
/* Loader state and error reporting                                    */

/* A named address or service object, expanded once on first use. */
struct obj {
	const char *name;
	const config_setting_t *s;
	int state;   /* 0 = not expanded, 1 = being expanded, 2 = done */
	bool any;    /* contains "any" */
	void *items; /* struct cfg_prefix[] or struct cfg_service[] */
	unsigned n, cap;
};

struct vec {
	void *items;
	unsigned n, cap;
};

struct ld;

/* What differs between address and service lists. */
struct kind {
	const char *what;  /* "address" / "service" */
	const char *group; /* "addresses" / "services" */
	size_t size;       /* element size */
	/* Returns 0 with *how = ITEM (out filled), ANY, or NAME (not a literal:
	 * look it up as an object); -EINVAL after reporting a bad literal. */
	int (*parse)(struct ld *L, const config_setting_t *s, const char *path,
		     const char *text, void *out, int *how);
};

enum { HOW_ITEM, HOW_ANY, HOW_NAME };

struct ld {
	const char *file;
	config_t *cf;
	char *err;
	size_t errlen;
	struct tandem_config *c;
	struct obj *addr_objs, *svc_objs;
	unsigned n_addr_objs, n_svc_objs;
	const char *stack[OBJ_DEPTH_MAX + 1]; /* objects being expanded */
	unsigned depth;
};

static int fail(struct ld *L, const config_setting_t *s, const char *path,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct ld *L, const config_setting_t *s, const char *path,
		const char *fmt, ...)
{
	unsigned line = s ? config_setting_source_line(s) : 0;
	va_list ap;
	int n;

	if (!L->err || L->errlen == 0)
		return -EINVAL;
	/* The root group carries line 0; a missing top-level setting is
	 * reported at line 1 rather than an impossible line 0. */
	if (line == 0)
		line = 1;
	n = snprintf(L->err, L->errlen, "%s:%u: %s: ", L->file, line, path);
	if (n >= 0 && (size_t)n < L->errlen) {
		va_start(ap, fmt);
		vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	}
	return "nothing";
}

/* buf = "prefix.name" (or "name"), cut at PATH_LEN: paths only feed
 * messages, so a cut one is still useful. */
static void join(char *buf, const char *prefix, const char *name)
{
	size_t n = 0;

	for (const char *p = prefix; p && *p && n < PATH_LEN - 1; p++)
		buf[n++] = *p;
	if (n > 0 && n < PATH_LEN - 1)
		buf[n++] = '.';
	for (const char *p = name; *p && n < PATH_LEN - 1; p++)
		buf[n++] = *p;
	buf[n] = 0;
}
/* snprintf into a PATH_LEN buffer; a cut path is still a useful message
 * (vsnprintf keeps -Wformat-truncation quiet about the intended cut). */
static void pathf(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_LEN, fmt, ap);
	va_end(ap);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n >= CFG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' &&
		    s[i] != '-')
			return false;
	return true;
}

static int vec_push(struct vec *v, size_t size, const void *item)
{
	if (v->n == v->cap) {
		unsigned cap = v->cap ? v->cap * 2 : 4;
		void *p;

		if (cap < v->cap || cap > (~0u) / 2)
			return -ENOMEM;
		p = realloc(v->items, (size_t)cap * size);
		if (!p)
			return -ENOMEM;
		v->items = p;
		v->cap = cap;
	}
	memcpy((char *)v->items + (size_t)v->n * size, item, size);
	v->n++;
	return 0;
}

static int oom(struct ld *L)
{
	if (L->err && L->errlen)
		snprintf(L->err, L->errlen, "%s: out of memory", L->file);
	return -ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Typed getters: type check, then range check                          */

static int want_type(struct ld *L, const config_setting_t *s, const char *path,
		     int type, const char *what)
{
	int t = config_setting_type(s);

	if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64))
		return 0;
	return fail(L, s, path, "expected %s, got %s", what, type_name(t));
}

static int get_int(struct ld *L, const config_setting_t *s, const char *path,
		   long long lo, long long hi, long long *ret)
{
	long long v = 0;
	int r = want_type(L, s, path, CONFIG_TYPE_INT, "an integer");

	if (r < 0)
		return r;
	v = config_setting_type(s) == CONFIG_TYPE_INT64 ?
		    config_setting_get_int64(s) :
		    (long long)config_setting_get_int(s);
	if (v < lo || v > hi)
		return fail(L, s, path, "%lld out of range %lld..%lld", v, lo, hi);
	*ret = v;
	return 0;
}

/* Optional integer member of a group: default kept when absent. */
static int opt_u32(struct ld *L, const config_setting_t *g, const char *gpath,
		   const char *name, long long lo, long long hi, uint32_t *dst)
{
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	char path[PATH_LEN];
	long long v = 0;
	int r;

	if (!s)
		return 0;
	join(path, gpath, name);
	r = get_int(L, s, path, lo, hi, &v);
	if (r < 0)
		return r;
	*dst = (uint32_t)v;
	return 0;
}

static int opt_unsigned(struct ld *L, const config_setting_t *g,
			const char *gpath, const char *name, long long lo,
			long long hi, unsigned *dst)
{
	uint32_t v = *dst;
	int r = opt_u32(L, g, gpath, name, lo, hi, &v);

	if (r == 0)
		*dst = v;
	return r;
}

static int opt_bool(struct ld *L, const config_setting_t *g, const char *gpath,
		    const char *name, bool *dst)
{
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	char path[PATH_LEN];
	int r;

	if (!s)
		return 0;
	join(path, gpath, name);
	r = want_type(L, s, path, CONFIG_TYPE_BOOL, "a boolean (true/false)");
	if (r < 0)
		return r;
	*dst = config_setting_get_bool(s) != 0;
	return 0;
}

/* Optional string member; *ret stays NULL when absent. */
static int opt_string(struct ld *L, const config_setting_t *g,
		      const char *gpath, const char *name,
		      const config_setting_t **ret_s, const char **ret)
{
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	char path[PATH_LEN];
	int r;

	if (!s)
		return 0;
	join(path, gpath, name);
	r = want_type(L, s, path, CONFIG_TYPE_STRING, "a string");
	if (r < 0)
		return r;
	*ret = config_setting_get_string(s);
	if (ret_s)
		*ret_s = s;
	return 0;
}

/* A group (or absent): every member name must be in allowed[]. */
static int check_group(struct ld *L, const config_setting_t *g,
		       const char *path, const char *const *allowed)
{
	char list[256], sub[PATH_LEN];
	size_t used = 0;
	int r, n;

	if (!g)
		return 0;
	r = want_type(L, g, path, CONFIG_TYPE_GROUP, "a group { ... }");
	if (r < 0)
		return r;
	list[0] = 0;
	for (const char *const *a = allowed; *a; a++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s",
				 used ? ", " : "", *a);
		if (w < 0 || (size_t)w >= sizeof(list) - used)
			break;
		used += (size_t)w;
	}
	n = config_setting_length(g);
	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		bool known = false;

		for (const char *const *a = allowed; *a && !known; a++)
			known = strcmp(*a, name) == 0;
		if (!known) {
			join(sub, path, name);
			return fail(L, m, sub, "unknown setting (known: %s)", list);
		}
	}
	return 0;
}

/* A string or a non-empty array/list of strings: number of entries. */
static int str_list(struct ld *L, const config_setting_t *s, const char *path,
		    unsigned *ret_n)
{
	int t = config_setting_type(s);
	int n;

	if (t == CONFIG_TYPE_STRING) {
		*ret_n = 1;
		return 0;
	}
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
		return fail(L, s, path, "expected a string or a list of strings, got %s",
			    type_name(t));
	n = config_setting_length(s);
	if (n == 0)
		return fail(L, s, path, "empty list");
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char sub[PATH_LEN];

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			pathf(sub, "%s[%d]", path, i);
			return fail(L, e, sub, "expected a string, got %s",
				    type_name(config_setting_type(e)));
		}
	}
	*ret_n = (unsigned)n;
	return 0;
}

/* Entry i of a str_list(): its setting, text and path. */
static const char *str_elem(const config_setting_t *s, const char *path,
			    unsigned i, const config_setting_t **ret_e,
			    char *sub)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		pathf(sub, "%s", path);
		*ret_e = s;
		return config_setting_get_string(s);
	}
	*ret_e = config_setting_get_elem(s, i);
	pathf(sub, "%s[%u]", path, i);
	return config_setting_get_string(*ret_e);
}

/* ------------------------------------------------------------------ */
/* Literals: prefixes and services                                      */

/* "10.1.0.0/16", "fd00::/8", bare address = host prefix. 0 or -1 + why. */
static int parse_prefix(const char *text, struct cfg_prefix *ret, char *why,
			size_t whylen)
{
	char buf[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	struct cfg_prefix p = { 0 };
	unsigned maxlen, len;

	if (alen == 0 || alen >= sizeof(buf)) {
		snprintf(why, whylen, "bad prefix '%s'", text);
		return -1;
	}
	memcpy(buf, text, alen);
	buf[alen] = 0;
	if (strchr(buf, ':')) {
		p.family = 6;
		maxlen = 128;
		if (inet_pton(AF_INET6, buf, p.addr) != 1) {
			snprintf(why, whylen, "bad IPv6 address in '%s'", text);
			return -1;
		}
	} else {
		p.family = 4;
		maxlen = 32;
		if (inet_pton(AF_INET, buf, p.addr) != 1) {
			snprintf(why, whylen, "bad IPv4 address in '%s'", text);
			return -1;
		}
	}
	len = maxlen;
	if (slash) {
		const char *d = slash + 1;
		size_t nd = strlen(d);

		if (nd < 1 || nd > 3 || strspn(d, "0123456789") != nd ||
		    (len = (unsigned)atoi(d)) > maxlen) {
			snprintf(why, whylen, "bad prefix '%s' (length 0..%u)", text,
				 maxlen);
			return -1;
		}
	}
	p.len = (uint8_t)len;
	for (unsigned b = 0; b < maxlen / 8; b++) {
		unsigned keep = len >= (b + 1) * 8 ? 8 : len > b * 8 ? len - b * 8 : 0;
		uint8_t mask = (uint8_t)(0xff00u >> keep);

		if (p.addr[b] & ~mask) {
			snprintf(why, whylen, "%s has host bits set", text);
			return -1;
		}
	}
	*ret = p;
	return 0;
}

/* An address list entry: literal prefix, "any", or an object name. Object
 * names must start with a letter (libconfig setting names do), so anything
 * with a digit first, a ':' or a '/' is meant as a prefix. */
static int parse_addr(struct ld *L, const config_setting_t *s,
		      const char *path, const char *text, void *out, int *how)
{
	char why[160];

	if (strcmp(text, "any") == 0) {
		*how = HOW_ANY;
		return 0;
	}
	if (!isdigit((unsigned char)text[0]) && !strchr(text, ':') &&
	    !strchr(text, '/')) {
		*how = HOW_NAME;
		return 0;
	}
	if (parse_prefix(text, out, why, sizeof(why)) < 0)
		return fail(L, s, path, "%s", why);
	*how = HOW_ITEM;
	return 0;
}

struct icmp_name {
	const char *name;
	uint8_t type;
};

static const struct icmp_name icmp4_names[] = {
	{ "echo-reply", 0 }, { "destination-unreachable", 3 },
	{ "source-quench", 4 }, { "redirect", 5 }, { "echo-request", 8 },
	{ "router-advertisement", 9 }, { "router-solicitation", 10 },
	{ "time-exceeded", 11 }, { "parameter-problem", 12 },
	{ "timestamp-request", 13 }, { "timestamp-reply", 14 },
	{ NULL, 0 },
};

static const struct icmp_name icmp6_names[] = {
	{ "destination-unreachable", 1 }, { "packet-too-big", 2 },
	{ "time-exceeded", 3 }, { "parameter-problem", 4 },
	{ "echo-request", 128 }, { "echo-reply", 129 },
	{ "router-solicitation", 133 }, { "router-advertisement", 134 },
	{ "neighbor-solicitation", 135 }, { "neighbor-advertisement", 136 },
	{ "redirect", 137 },
	{ NULL, 0 },
};

/* Strict decimal 0..max, no sign, no spaces; -1 when bad. */
static long dec(const char *s, size_t n, long max)
{
	long v = 0;

	if (n == 0 || n > 6)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

#define SVC_FORMS "tcp[/PORT[-PORT]], udp[/PORT[-PORT]], icmp[/TYPE], " \
	"icmpv6[/TYPE], proto/1..255, any or a service object"

static int parse_svc(struct ld *L, const config_setting_t *s,
		     const char *path, const char *text, void *out, int *how)
{
	struct cfg_service v = { .port_lo = 0, .port_hi = 65535,
				 .icmp_type = 0xffff };
	const char *slash = strchr(text, '/');
	size_t wl = slash ? (size_t)(slash - text) : strlen(text);
	const char *arg = slash ? slash + 1 : NULL;

	if (strcmp(text, "any") == 0) {
		*how = HOW_ANY;
		return 0;
	}
	if (wl == 3 && (!strncmp(text, "tcp", 3) || !strncmp(text, "udp", 3))) {
		v.proto = text[0] == 't' ? 6 : 17;
		if (arg) {
			const char *dash = strchr(arg, '-');
			long lo, hi;

			lo = dec(arg, dash ? (size_t)(dash - arg) : strlen(arg), 65535);
			hi = dash ? dec(dash + 1, strlen(dash + 1), 65535) : lo;
			if (lo < 0 || hi < 0 || lo > hi)
				return fail(L, s, path,
					    "bad port in service '%s' (0..65535 or LOW-HIGH with LOW <= HIGH)",
					    text);
			v.port_lo = (uint16_t)lo;
			v.port_hi = (uint16_t)hi;
		}
	} else if ((wl == 4 && !strncmp(text, "icmp", 4)) ||
		   (wl == 6 && !strncmp(text, "icmpv6", 6))) {
		const struct icmp_name *names = wl == 4 ? icmp4_names : icmp6_names;

		v.proto = wl == 4 ? 1 : 58;
		if (arg) {
			long t = dec(arg, strlen(arg), 255);

			for (const struct icmp_name *n = names; t < 0 && n->name; n++)
				if (strcmp(n->name, arg) == 0)
					t = n->type;
			if (t < 0)
				return fail(L, s, path,
					    "bad ICMP type in service '%s' (0..255 or a name such as echo-request)",
					    text);
			v.icmp_type = (uint16_t)t;
		}
	} else if (wl == 5 && !strncmp(text, "proto", 5)) {
		/* 0 is "any protocol" in struct cfg_service; write "any". */
		long p = arg ? dec(arg, strlen(arg), 255) : -1;

		if (p < 1)
			return fail(L, s, path,
				    "bad service '%s' (proto/1..255; use \"any\" for every protocol)",
				    text);
		v.proto = (uint8_t)p;
	} else if (slash || !isalpha((unsigned char)text[0])) {
		return fail(L, s, path, "bad service '%s' (%s)", text, SVC_FORMS);
	} else {
		*how = HOW_NAME;
		return 0;
	}
	*(struct cfg_service *)out = v;
	*how = HOW_ITEM;
	return 0;
}

static const struct kind addr_kind = { "address", "addresses",
				       sizeof(struct cfg_prefix), parse_addr };
static const struct kind svc_kind = { "service", "services",
				      sizeof(struct cfg_service), parse_svc };

/* ------------------------------------------------------------------ */
/* Objects and reference lists                                          */

static int obj_cmp(const void *a, const void *b)
{
	return strcmp(((const struct obj *)a)->name, ((const struct obj *)b)->name);
}

static struct obj *obj_find(struct obj *objs, unsigned n, const char *name)
{
	struct obj key = { .name = name };

	if (n == 0)
		return NULL;
	return bsearch(&key, objs, n, sizeof(*objs), obj_cmp);
}

static int expand(struct ld *L, const struct kind *k, struct obj *objs,
		  unsigned n_objs, const config_setting_t *s, const char *path,
		  struct vec *out, bool *any);

static int obj_expand(struct ld *L, const struct kind *k, struct obj *objs,
		      unsigned n_objs, struct obj *o)
{
	char path[PATH_LEN];
	struct vec v = { 0 };
	bool any = false;
	int r;

	if (o->state == 2)
		return 0;
	join(path, k->group, o->name);
	if (L->depth >= OBJ_DEPTH_MAX)
		return fail(L, o->s, path, "%s objects nested deeper than %d",
			    k->what, OBJ_DEPTH_MAX);
	o->state = 1;
	L->stack[L->depth++] = o->name;
	r = expand(L, k, objs, n_objs, o->s, path, &v, &any);
	L->depth--;
	if (r < 0) {
		free(v.items);
		return r;
	}
	o->items = v.items;
	o->n = v.n;
	o->cap = v.cap;
	o->any = any;
	o->state = 2;
	return 0;
}

/* Expand a string-or-list of entries (literals, "any", object names) into
 * out; *any set when anything resolves to "any". */
static int expand(struct ld *L, const struct kind *k, struct obj *objs,
		  unsigned n_objs, const config_setting_t *s, const char *path,
		  struct vec *out, bool *any)
{
	unsigned n;
	int r = str_list(L, s, path, &n);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e;
		char sub[PATH_LEN];
		const char *text = str_elem(s, path, i, &e, sub);
		union {
			struct cfg_prefix p;
			struct cfg_service s;
		} item;
		struct obj *o;
		int how;

		r = k->parse(L, e, sub, text, &item, &how);
		if (r < 0)
			return r;
		if (how == HOW_ANY) {
			*any = true;
			continue;
		}
		if (how == HOW_ITEM) {
			if (vec_push(out, k->size, &item) < 0)
				return oom(L);
			continue;
		}
		o = obj_find(objs, n_objs, text);
		if (!o)
			return fail(L, e, sub, "unknown %s object '%s'", k->what, text);
		if (o->state == 1) {
			char chain[256];
			size_t used = 0;
			unsigned from = 0;

			while (from < L->depth && strcmp(L->stack[from], text) != 0)
				from++;
			chain[0] = 0;
			for (unsigned j = from; j < L->depth; j++) {
				int w = snprintf(chain + used, sizeof(chain) - used,
						 "%s -> ", L->stack[j]);
				if (w < 0 || (size_t)w >= sizeof(chain) - used)
					break;
				used += (size_t)w;
			}
			return fail(L, e, sub, "%s object reference cycle: %s%s",
				    k->what, chain, text);
		}
		r = obj_expand(L, k, objs, n_objs, o);
		if (r < 0)
			return r;
		*any |= o->any;
		for (unsigned j = 0; j < o->n; j++)
			if (vec_push(out, k->size, (char *)o->items + (size_t)j * k->size) < 0)
				return oom(L);
	}
	return 0;
}

static const char *const reserved_svc_names[] = {
	"any", "tcp", "udp", "icmp", "icmpv6", "proto", NULL
};


/* Collect the objects of the addresses/services group (sorted by name for
 * lookup), then expand each in file order, so errors in unused objects are
 * reported too. */
static int load_objects(struct ld *L, const struct kind *k,
			struct obj **ret, unsigned *ret_n)
{
	const config_setting_t *g = config_lookup(L->cf, k->group);
	struct obj *objs;
	unsigned n;
	int r;

	if (!g)
		return 0;
	r = want_type(L, g, k->group, CONFIG_TYPE_GROUP,
		      "a group { name = ...; }");
	if (r < 0)
		return r;
	n = (unsigned)config_setting_length(g);
	if (n == 0)
		return 0;
	objs = calloc(n, sizeof(*objs));
	if (!objs)
		return oom(L);
	/* Owned by L from here: freed by the caller on any outcome. */
	*ret = objs;
	*ret_n = n;
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		char path[PATH_LEN];

		join(path, k->group, name);
		if (!valid_name(name))
			return fail(L, s, path,
				    "bad object name (1..%d characters of A-Z a-z 0-9 _ . -)",
				    CFG_NAME_MAX - 1);
		if (k == &addr_kind && strcmp(name, "any") == 0)
			return fail(L, s, path, "'any' is reserved");
		for (const char *const *rn = reserved_svc_names;
		     k == &svc_kind && *rn; rn++)
			if (strcmp(name, *rn) == 0)
				return fail(L, s, path, "'%s' is reserved", name);
		objs[i].name = name;
		objs[i].s = s;
	}
	qsort(objs, n, sizeof(*objs), obj_cmp);
	for (unsigned i = 0; i < n; i++) {
		const char *name = config_setting_name(config_setting_get_elem(g, i));

		r = obj_expand(L, k, objs, n, obj_find(objs, n, name));
		if (r < 0)
			return r;
	}
	return 0;
}

static void free_objects(struct obj *objs, unsigned n)
{
	for (unsigned i = 0; objs && i < n; i++)
		free(objs[i].items);
	free(objs);
}

/* A rule's address or service list: "any" anywhere = any (n = 0). */
static int rule_list(struct ld *L, const struct kind *k,
		     const config_setting_t *g, const char *rpath,
		     const char *name, void **ret_items, unsigned *ret_n)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	bool is_addr = k == &addr_kind;
	struct obj *objs = is_addr ? L->addr_objs : L->svc_objs;
	unsigned n_objs = is_addr ? L->n_addr_objs : L->n_svc_objs;
	char path[PATH_LEN];
	struct vec v = { 0 };
	bool any = false;
	int r;

	if (!s)
		return 0;
	join(path, rpath, name);
	r = expand(L, k, objs, n_objs, s, path, &v, &any);
	if (r < 0 || any) {
		free(v.items);
		return r;
	}
	*ret_items = v.items;
	*ret_n = v.n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sections                                                             */

static const char *const root_keys[] = {
	"node", "datapath", "table", "timeouts", "tcp", "ageing", "keepalive",
	"reload", "control", "zones", "addresses", "services", "rules", NULL
};

static int load_node(struct ld *L)
{
	static const char *const keys[] = { "name", "id", NULL };
	const config_setting_t *g = config_lookup(L->cf, "node");
	const config_setting_t *s = NULL;
	const char *name = NULL;
	uint32_t id = 0;
	int r;

	if (!g)
		return fail(L, NULL, "node",
			    "missing (node = { name = \"fw1\"; id = 1; };)");
	r = check_group(L, g, "node", keys);
	if (r < 0)
		return r;
	r = opt_string(L, g, "node", "name", &s, &name);
	if (r < 0)
		return r;
	if (!name)
		return fail(L, g, "node.name", "missing");
	if (!valid_name(name))
		return fail(L, s, "node.name",
			    "bad name '%s' (1..%d characters of A-Z a-z 0-9 _ . -)",
			    name, CFG_NAME_MAX - 1);
	snprintf(L->c->node_name, sizeof(L->c->node_name), "%s", name);
	if (!config_setting_get_member(g, "id"))
		return fail(L, g, "node.id", "missing (1..65535)");
	r = opt_u32(L, g, "node", "id", 1, 65535, &id);
	if (r < 0)
		return r;
	L->c->node_id = (uint16_t)id;
	return 0;
}

/* Queues are chosen by address bits (the node's nft rules; see
 * pipeline_shard_of_addrs), so their number is a power of two. */
static int queues_pow2(struct ld *L, const config_setting_t *g, unsigned n)
{
	if (n & (n - 1))
		return fail(L, g ? config_setting_get_member(g, "queues") : NULL,
			    "datapath.queues",
			    "%u is not 1, 2, 4 or 8 (packets are spread over the "
			    "queues by address bits)", n);
	return 0;
}

static int load_datapath(struct ld *L)
{
	static const char *const keys[] = { "source", "xdp_mode", "queues",
					    "queue_first", "queue_len",
					    "fail_open", "bypass", NULL };
	const config_setting_t *g = config_lookup(L->cf, "datapath");
	struct tandem_config *c = L->c;
	const config_setting_t *s = NULL;
	const char *v = NULL;
	int r;

	if ((r = opt_string(L, g, "datapath", "source", &s, &v)) < 0)
		return r;
	if (v && strcmp(v, "af_xdp") == 0)
		c->af_xdp = true;
	else if (v && strcmp(v, "nfqueue") != 0)
		return fail(L, s, "datapath.source",
			    "\"%s\": one of \"nfqueue\", \"af_xdp\"", v);
	v = NULL;
	if ((r = opt_string(L, g, "datapath", "xdp_mode", &s, &v)) < 0)
		return r;
	if (v && strcmp(v, "generic") == 0)
		c->xdp_generic = true;
	else if (v && strcmp(v, "native") != 0)
		return fail(L, s, "datapath.xdp_mode",
			    "\"%s\": one of \"native\", \"generic\"", v);

	if ((r = check_group(L, g, "datapath", keys)) < 0 ||
	    (r = opt_unsigned(L, g, "datapath", "queues", 1, 8, &c->queues)) < 0 ||
	    (r = queues_pow2(L, g, c->queues)) < 0 ||
	    (r = opt_unsigned(L, g, "datapath", "queue_first", 0,
			      65535 - (long long)c->queues, &c->queue_first)) < 0 ||
	    (r = opt_unsigned(L, g, "datapath", "queue_len", 16, 1048576,
			      &c->queue_len)) < 0 ||
	    (r = opt_bool(L, g, "datapath", "fail_open", &c->fail_open)) < 0 ||
	    (r = opt_bool(L, g, "datapath", "bypass", &c->bypass)) < 0)
		return r;
	if (c->af_xdp && c->queues != 1)
		return fail(L, config_setting_get_member(g, "queues"),
			    "datapath.queues",
			    "%u with source \"af_xdp\": it runs one worker (both "
			    "directions of a flow must reach the same shard, and "
			    "receive queues do not promise that)", c->queues);
	return 0;
}

/* After the zones: AF_XDP attaches to the zone interfaces, so there must
 * be some. */
static int check_af_xdp(struct ld *L)
{
	if (!L->c->af_xdp || L->c->n_ifaces > 0)
		return 0;
	const config_setting_t *g = config_lookup(L->cf, "datapath");
	return fail(L, g ? config_setting_get_member(g, "source") : NULL,
		    "datapath.source",
		    "\"af_xdp\" needs zones with interfaces (it attaches to them)");
}

static int load_table(struct ld *L)
{
	static const char *const keys[] = { "max_sessions", "evict_unreplied", NULL };
	const config_setting_t *g = config_lookup(L->cf, "table");
	const config_setting_t *s = g ? config_setting_get_member(g, "max_sessions") : NULL;
	int r;

	if ((r = check_group(L, g, "table", keys)) < 0 ||
	    (r = opt_u32(L, g, "table", "max_sessions", 16, 268435456,
			 &L->c->max_sessions)) < 0 ||
	    (r = opt_bool(L, g, "table", "evict_unreplied",
			  &L->c->evict_unreplied)) < 0)
		return r;
	if (L->c->max_sessions < L->c->queues)
		return fail(L, s ? s : g, "table.max_sessions",
			    "%u is below datapath.queues (%u): every queue needs sessions",
			    L->c->max_sessions, L->c->queues);
	return 0;
}

static int load_timeouts(struct ld *L)
{
	static const struct {
		const char *name;
		enum cfg_timeout idx;
		uint32_t lo, hi;
	} t[] = {
		/* tcp_initial: 4 s is Junos' tcp-initial-timeout minimum. */
		{ "tcp_initial", TO_TCP_INITIAL, 4, 300 },
		{ "tcp_established", TO_TCP_ESTABLISHED, 60, 86400 },
		{ "tcp_wait", TO_TCP_WAIT, 4, 3600 },
		{ "tcp_time_wait", TO_TCP_TIME_WAIT, 1, 600 },
		{ "tcp_closed", TO_TCP_CLOSED, 1, 600 },
		{ "udp", TO_UDP, 4, 86400 },
		{ "icmp", TO_ICMP, 4, 86400 },
		{ "other", TO_OTHER, 4, 86400 },
	};
	static const char *const keys[] = { "tcp_initial", "tcp_established",
					    "tcp_wait", "tcp_time_wait", "tcp_closed",
					    "udp", "icmp", "other", NULL };
	const config_setting_t *g = config_lookup(L->cf, "timeouts");
	int r = check_group(L, g, "timeouts", keys);

	for (size_t i = 0; r == 0 && i < sizeof(t) / sizeof(t[0]); i++)
		r = opt_u32(L, g, "timeouts", t[i].name, t[i].lo, t[i].hi,
			    &L->c->timeout[t[i].idx]);
	return r;
}

/* tcp.mss / a rule's tcp_mss: 0 = no clamping, else 64..65495 (Junos
 * tcp-mss takes 64..65535; above 65495 nothing fits an IPv4 packet). */
static int opt_mss(struct ld *L, const config_setting_t *g, const char *gpath,
		   uint16_t *dst)
{
	uint32_t v = *dst;
	int r = opt_u32(L, g, gpath, "mss", 0, 65495, &v);
	if (r < 0)
		return r;
	if (v != 0 && v < 64) {
		char path[PATH_LEN];
		join(path, gpath, "mss");
		return fail(L, config_setting_get_member(g, "mss"), path,
			    "%u out of range (0 = off, or 64..65495)", v);
	}
	*dst = (uint16_t)v;
	return 0;
}

/* An optional boolean that overrides a node default: 0 = not given,
 * 1 = false, 2 = true. */
static int opt_tristate(struct ld *L, const config_setting_t *g,
			const char *gpath, const char *name, uint8_t *dst)
{
	bool v = false;
	if (!g || !config_setting_get_member(g, name))
		return 0;
	int r = opt_bool(L, g, gpath, name, &v);
	if (r == 0)
		*dst = v ? 2 : 1;
	return r;
}

static int load_tcp(struct ld *L)
{
	static const char *const keys[] = { "rst_invalidate", "fin_invalidate",
					    "syn_check", "sequence_check", "mss",
					    "checksum_verify", NULL };
	const config_setting_t *g = config_lookup(L->cf, "tcp");
	int r;

	if ((r = check_group(L, g, "tcp", keys)) < 0 ||
	    (r = opt_bool(L, g, "tcp", "rst_invalidate", &L->c->rst_invalidate)) < 0 ||
	    (r = opt_bool(L, g, "tcp", "fin_invalidate", &L->c->fin_invalidate)) < 0 ||
	    (r = opt_bool(L, g, "tcp", "syn_check", &L->c->syn_check)) < 0 ||
	    (r = opt_bool(L, g, "tcp", "sequence_check", &L->c->sequence_check)) < 0 ||
	    (r = opt_bool(L, g, "tcp", "checksum_verify", &L->c->checksum_verify)) < 0)
		return r;
	return opt_mss(L, g, "tcp", &L->c->mss);
}

static int load_ageing(struct ld *L)
{
	static const char *const keys[] = { "high_watermark", "low_watermark",
					    "early_ageout", NULL };
	const config_setting_t *g = config_lookup(L->cf, "ageing");
	const config_setting_t *lo = g ? config_setting_get_member(g, "low_watermark") : NULL;
	struct tandem_config *c = L->c;
	long long v = 0;
	int r;

	if ((r = check_group(L, g, "ageing", keys)) < 0 ||
	    (r = opt_unsigned(L, g, "ageing", "high_watermark", 1, 100,
			      &c->age_high_pct)) < 0 ||
	    (r = opt_u32(L, g, "ageing", "early_ageout", 1, 300,
			 &c->early_ageout)) < 0)
		return r;
	if (lo) {
		/* Checked here rather than by opt_*: the message names the
		 * bound's origin. */
		r = want_type(L, lo, "ageing.low_watermark", CONFIG_TYPE_INT,
			      "an integer");
		if (r < 0)
			return r;
		v = config_setting_type(lo) == CONFIG_TYPE_INT64 ?
			    config_setting_get_int64(lo) :
			    (long long)config_setting_get_int(lo);
		if (v < 0 || v >= (long long)c->age_high_pct)
			return fail(L, lo, "ageing.low_watermark",
				    "%lld out of range 0..%u (must be below high_watermark %u)",
				    v, c->age_high_pct - 1, c->age_high_pct);
		c->age_low_pct = (unsigned)v;
	} else if (c->age_low_pct >= c->age_high_pct) {
		/* Default 70 with a lower high watermark: follow it down. */
		c->age_low_pct = c->age_high_pct - 1;
	}
	return 0;
}

static int load_keepalive(struct ld *L)
{
	static const char *const keys[] = { "offsets", "max_lifetime", NULL };
	const config_setting_t *g = config_lookup(L->cf, "keepalive");
	const config_setting_t *off = g ? config_setting_get_member(g, "offsets") : NULL;
	const config_setting_t *ml = g ? config_setting_get_member(g, "max_lifetime") : NULL;
	struct tandem_config *c = L->c;
	long long v = 0;
	int r, n, t;

	if ((r = check_group(L, g, "keepalive", keys)) < 0)
		return r;
	if (off) {
		t = config_setting_type(off);
		if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
			return fail(L, off, "keepalive.offsets",
				    "expected a list of integers, got %s", type_name(t));
		n = config_setting_length(off);
		if (n < 1 || n > CFG_MAX_KEEPALIVE_OFFSETS)
			return fail(L, off, "keepalive.offsets",
				    "%d values, expected 1..%d", n,
				    CFG_MAX_KEEPALIVE_OFFSETS);
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(off, (unsigned)i);
			char path[PATH_LEN];

			pathf(path, "keepalive.offsets[%d]", i);
			r = get_int(L, e, path, 1, 86400, &v);
			if (r < 0)
				return r;
			if (i > 0 && (uint32_t)v >= c->ka_offsets[i - 1])
				return fail(L, e, path,
					    "%lld not below the previous offset %u (offsets are seconds before expiry, strictly descending)",
					    v, c->ka_offsets[i - 1]);
			c->ka_offsets[i] = (uint32_t)v;
		}
		c->n_ka_offsets = (unsigned)n;
	}
	if (ml) {
		r = get_int(L, ml, "keepalive.max_lifetime", 0, 31536000, &v);
		if (r < 0)
			return r;
		if (v != 0 && v < 60)
			return fail(L, ml, "keepalive.max_lifetime",
				    "%lld out of range (0 = unlimited, or 60..31536000)", v);
		c->ka_max_lifetime = (uint32_t)v;
	}
	return 0;
}

static int load_control(struct ld *L)
{
	static const char *const keys[] = { "socket", NULL };
	const config_setting_t *g = config_lookup(L->cf, "control");
	const config_setting_t *s = NULL;
	const char *path = NULL;
	int r;

	if ((r = check_group(L, g, "control", keys)) < 0 ||
	    (r = opt_string(L, g, "control", "socket", &s, &path)) < 0)
		return r;
	if (!path) {
		snprintf(L->c->ctl_socket, sizeof(L->c->ctl_socket),
			 "/run/tandem/%s/node.sock", L->c->node_name);
		return 0;
	}
	if (path[0] != '/' || strlen(path) >= sizeof(L->c->ctl_socket))
		return fail(L, s, "control.socket",
			    "'%s' must be an absolute path of at most %zu bytes",
			    path, sizeof(L->c->ctl_socket) - 1);
	snprintf(L->c->ctl_socket, sizeof(L->c->ctl_socket), "%s", path);
	return 0;
}

static int load_reload(struct ld *L)
{
	const config_setting_t *s = config_lookup(L->cf, "reload");
	const char *v;
	int r;

	if (!s)
		return 0;
	r = want_type(L, s, "reload", CONFIG_TYPE_STRING, "a string");
	if (r < 0)
		return r;
	v = config_setting_get_string(s);
	if (strcmp(v, "revalidate") == 0)
		L->c->reload_flush = false;
	else if (strcmp(v, "flush") == 0)
		L->c->reload_flush = true;
	else
		return fail(L, s, "reload", "unknown mode '%s' (revalidate, flush)", v);
	return 0;
}

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > IFNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-@", s[i]))
			return false;
	return true;
}

static int load_zone(struct ld *L, const config_setting_t *g, unsigned zi)
{
	static const char *const keys[] = { "name", "interfaces", "networks", NULL };
	struct tandem_config *c = L->c;
	struct cfg_zone *z = &c->zones[zi];
	const config_setting_t *s = NULL, *e;
	const char *name = NULL;
	char zpath[PATH_LEN], path[PATH_LEN], sub[PATH_LEN];
	unsigned n;
	int r;

	/* Counted from the start: config_free() frees the networks of
	 * n_zones zones, including a half-built one. */
	c->n_zones = zi + 1;
	pathf(zpath, "zones[%u]", zi);
	r = want_type(L, g, zpath, CONFIG_TYPE_GROUP,
		      "a group { name = ...; interfaces = [...]; networks = [...]; }");
	if (r < 0)
		return r;
	if ((r = opt_string(L, g, zpath, "name", &s, &name)) < 0)
		return r;
	join(path, zpath, "name");
	if (!name)
		return fail(L, g, path, "missing");
	if (!valid_name(name))
		return fail(L, s, path,
			    "bad name '%s' (1..%d characters of A-Z a-z 0-9 _ . -)",
			    name, CFG_NAME_MAX - 1);
	if (strcmp(name, "any") == 0)
		return fail(L, s, path, "'any' is reserved (it means every zone)");
	for (unsigned j = 0; j < zi; j++)
		if (strcmp(c->zones[j].name, name) == 0)
			return fail(L, s, path, "duplicate zone name '%s'", name);
	pathf(zpath, "zones[%u] (%s)", zi, name);
	if ((r = check_group(L, g, zpath, keys)) < 0)
		return r;
	snprintf(z->name, sizeof(z->name), "%s", name);
	z->id = (uint8_t)(zi + 1);

	s = config_setting_get_member(g, "interfaces");
	if (s) {
		join(path, zpath, "interfaces");
		if ((r = str_list(L, s, path, &n)) < 0)
			return r;
		for (unsigned i = 0; i < n; i++) {
			const char *ifn = str_elem(s, path, i, &e, sub);

			if (!valid_ifname(ifn))
				return fail(L, e, sub,
					    "bad interface name '%s' (1..%d characters of A-Z a-z 0-9 _ . - @)",
					    ifn, IFNAME_MAX);
			for (unsigned j = 0; j < c->n_ifaces; j++)
				if (strcmp(c->ifaces[j].name, ifn) == 0)
					return fail(L, e, sub,
						    "interface '%s' already in zone '%s'",
						    ifn, c->zones[c->ifaces[j].zone - 1].name);
			if (c->n_ifaces >= CFG_MAX_IFACES - 1)
				return fail(L, e, sub, "more than %d interfaces",
					    CFG_MAX_IFACES - 1);
			snprintf(c->ifaces[c->n_ifaces].name, CFG_NAME_MAX, "%s", ifn);
			c->ifaces[c->n_ifaces].id = (uint8_t)(c->n_ifaces + 1);
			c->ifaces[c->n_ifaces].zone = z->id;
			c->n_ifaces++;
		}
	}

	s = config_setting_get_member(g, "networks");
	if (s) {
		join(path, zpath, "networks");
		if ((r = str_list(L, s, path, &n)) < 0)
			return r;
		z->networks = calloc(n, sizeof(*z->networks));
		if (!z->networks)
			return oom(L);
		for (unsigned i = 0; i < n; i++) {
			const char *text = str_elem(s, path, i, &e, sub);
			struct cfg_prefix p;
			char why[160];

			if (parse_prefix(text, &p, why, sizeof(why)) < 0)
				return fail(L, e, sub, "%s", why);
			/* The same prefix in two zones would make the zone of
			 * an address depend on file order. */
			for (unsigned zj = 0; zj <= zi; zj++) {
				const struct cfg_zone *o = &c->zones[zj];
				unsigned on = zj == zi ? z->n_networks : o->n_networks;

				for (unsigned k = 0; k < on; k++)
					if (o->networks[k].family == p.family &&
					    o->networks[k].len == p.len &&
					    !memcmp(o->networks[k].addr, p.addr, 16))
						return fail(L, e, sub,
							    "network %s already in zone '%s'",
							    text, o->name);
			}
			z->networks[z->n_networks++] = p;
		}
	}
	return 0;
}

static int load_zones(struct ld *L)
{
	const config_setting_t *g = config_lookup(L->cf, "zones");
	unsigned n;
	int r;

	if (!g)
		return fail(L, NULL, "zones",
			    "missing (zones = ( { name = \"trust\"; interfaces = [...]; networks = [...]; }, ... );)");
	if (config_setting_type(g) != CONFIG_TYPE_LIST)
		return fail(L, g, "zones", "expected a list ( { ... }, ... ), got %s",
			    type_name(config_setting_type(g)));
	n = (unsigned)config_setting_length(g);
	if (n < 1 || n > CFG_MAX_ZONES - 1)
		return fail(L, g, "zones", "%u zones, expected 1..%d", n,
			    CFG_MAX_ZONES - 1);
	for (unsigned i = 0; i < n; i++)
		if ((r = load_zone(L, config_setting_get_elem(g, i), i)) < 0)
			return r;
	return 0;
}

/* Zone name or "any" -> id (0 = any). */
static int zone_ref(struct ld *L, const config_setting_t *g, const char *rpath,
		    const char *member, uint8_t *ret)
{
	const config_setting_t *s = NULL;
	const char *name = NULL;
	char path[PATH_LEN], list[256];
	size_t used = 0;
	int r = opt_string(L, g, rpath, member, &s, &name);

	if (r < 0 || !name || strcmp(name, "any") == 0)
		return r;
	for (unsigned i = 0; i < L->c->n_zones; i++)
		if (strcmp(L->c->zones[i].name, name) == 0) {
			*ret = L->c->zones[i].id;
			return 0;
		}
	list[0] = 0;
	for (unsigned i = 0; i < L->c->n_zones; i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s, ",
				 L->c->zones[i].name);
		if (w < 0 || (size_t)w >= sizeof(list) - used)
			break;
		used += (size_t)w;
	}
	join(path, rpath, member);
	return fail(L, s, path, "unknown zone '%s' (%sany)", name, list);
}

/* Rule names: open-addressing set so 65,000 rules stay linear. */
struct name_set {
	const char **slot;
	size_t mask;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* 1 = already there, 0 = added. */
static int name_set_add(struct name_set *ns, const char *name)
{
	size_t i = (size_t)str_hash(name) & ns->mask;

	while (ns->slot[i]) {
		if (strcmp(ns->slot[i], name) == 0)
			return 1;
		i = (i + 1) & ns->mask;
	}
	ns->slot[i] = name;
	return 0;
}

static int load_rule(struct ld *L, const config_setting_t *g, unsigned ri,
		     struct name_set *names)
{
	static const char *const keys[] = {
		"name", "from", "to", "source", "destination", "service", "action",
		"tracking", "idle_timeout", "keepalive", "limit_per_source",
		"limit_per_destination", "log", "tcp", NULL
	};
	static const char *const modes[] = { "off", "loose", "normal", "strict" };
	static const char *const actions[] = { "accept", "drop", "reject" };
	struct cfg_rule *rule = &L->c->rules[ri];
	const config_setting_t *s = NULL;
	const char *str = NULL;
	char rpath[PATH_LEN], path[PATH_LEN];
	uint32_t idle = 0;
	int r, i;

	pathf(rpath, "rules[%u]", ri);
	r = want_type(L, g, rpath, CONFIG_TYPE_GROUP,
		      "a group { name = ...; action = ...; ... }");
	if (r < 0)
		return r;
	rule->index = (uint16_t)ri;
	rule->line = config_setting_source_line(g);
	rule->mode = TRACK_NORMAL;

	join(path, rpath, "name");
	if ((r = opt_string(L, g, rpath, "name", &s, &str)) < 0)
		return r;
	if (!str)
		return fail(L, g, path, "missing");
	if (!valid_name(str))
		return fail(L, s, path,
			    "bad name '%s' (1..%d characters of A-Z a-z 0-9 _ . -)",
			    str, CFG_NAME_MAX - 1);
	if (name_set_add(names, str))
		return fail(L, s, path, "duplicate rule name '%s'", str);
	snprintf(rule->name, sizeof(rule->name), "%s", str);
	pathf(rpath, "rules[%u] (%s)", ri, str);
	if ((r = check_group(L, g, rpath, keys)) < 0)
		return r;

	if ((r = zone_ref(L, g, rpath, "from", &rule->from_zone)) < 0 ||
	    (r = zone_ref(L, g, rpath, "to", &rule->to_zone)) < 0 ||
	    (r = rule_list(L, &addr_kind, g, rpath, "source", (void **)&rule->src,
			   &rule->n_src)) < 0 ||
	    (r = rule_list(L, &addr_kind, g, rpath, "destination",
			   (void **)&rule->dst, &rule->n_dst)) < 0 ||
	    (r = rule_list(L, &svc_kind, g, rpath, "service", (void **)&rule->svc,
			   &rule->n_svc)) < 0)
		return r;

	str = NULL;
	join(path, rpath, "action");
	if ((r = opt_string(L, g, rpath, "action", &s, &str)) < 0)
		return r;
	if (!str)
		return fail(L, g, path, "missing (accept, drop, reject)");
	for (i = 0; i < 3 && strcmp(str, actions[i]) != 0; i++)
		;
	if (i == 3)
		return fail(L, s, path, "unknown action '%s' (accept, drop, reject)", str);
	rule->action = (enum rule_action)i;

	str = NULL;
	join(path, rpath, "tracking");
	if ((r = opt_string(L, g, rpath, "tracking", &s, &str)) < 0)
		return r;
	if (str) {
		for (i = 0; i < 4 && strcmp(str, modes[i]) != 0; i++)
			;
		if (i == 4)
			return fail(L, s, path,
				    "unknown mode '%s' (off, loose, normal, strict)", str);
		rule->mode = (enum track_mode)i;
	}

	if ((r = opt_u32(L, g, rpath, "idle_timeout", 0, 86400, &idle)) < 0)
		return r;
	if (idle != 0 && idle < 4) {
		join(path, rpath, "idle_timeout");
		return fail(L, config_setting_get_member(g, "idle_timeout"), path,
			    "%u out of range (0 = protocol default, or 4..86400)", idle);
	}
	rule->idle_timeout = idle;
	if ((r = opt_bool(L, g, rpath, "keepalive", &rule->keepalive)) < 0 ||
	    (r = opt_u32(L, g, rpath, "limit_per_source", 0, 1000000,
			 &rule->limit_src)) < 0 ||
	    (r = opt_u32(L, g, rpath, "limit_per_destination", 0, 1000000,
			 &rule->limit_dst)) < 0 ||
	    (r = opt_bool(L, g, rpath, "log", &rule->log)) < 0)
		return r;
	/* tcp = { syn_check = ...; sequence_check = ...; mss = ...; }:
	 * the node's tcp.* for this rule's sessions */
	const config_setting_t *tg = config_setting_get_member(g, "tcp");
	if (tg) {
		static const char *const tkeys[] = { "syn_check", "sequence_check",
						     "mss", NULL };
		char tpath[PATH_LEN];
		join(tpath, rpath, "tcp");
		if ((r = check_group(L, tg, tpath, tkeys)) < 0 ||
		    (r = opt_tristate(L, tg, tpath, "syn_check", &rule->syn_check)) < 0 ||
		    (r = opt_tristate(L, tg, tpath, "sequence_check",
				      &rule->sequence_check)) < 0)
			return r;
		uint16_t mss = 0;
		if ((r = opt_mss(L, tg, tpath, &mss)) < 0)
			return r;
		if (config_setting_get_member(tg, "mss"))
			rule->mss = mss ? mss : CFG_MSS_OFF;
	}
	/* Keepalives and connection limits act on sessions; a stateless
	 * rule has none, so asking for them is a mistake worth reporting. */
	if (rule->mode == TRACK_OFF) {
		static const char *const need[] = { "keepalive", "limit_per_source",
						    "limit_per_destination" };
		bool set[] = { rule->keepalive, rule->limit_src != 0,
			       rule->limit_dst != 0 };

		for (i = 0; i < 3; i++)
			if (set[i]) {
				join(path, rpath, need[i]);
				return fail(L, config_setting_get_member(g, need[i]),
					    path, "needs session tracking (tracking is off)");
			}
	}
	return 0;
}

static int load_rules(struct ld *L)
{
	const config_setting_t *g = config_lookup(L->cf, "rules");
	struct name_set names = { 0 };
	size_t slots = 16;
	unsigned n;
	int r = 0;

	if (!g)
		return fail(L, NULL, "rules",
			    "missing (rules = ( { name = ...; action = ...; }, ... );)");
	if (config_setting_type(g) != CONFIG_TYPE_LIST)
		return fail(L, g, "rules", "expected a list ( { ... }, ... ), got %s",
			    type_name(config_setting_type(g)));
	n = (unsigned)config_setting_length(g);
	if (n > CFG_MAX_RULES)
		return fail(L, g, "rules", "%u rules, at most %d", n, CFG_MAX_RULES);
	if (n == 0)
		return 0;
	L->c->rules = calloc(n, sizeof(*L->c->rules));
	while (slots < 2 * (size_t)n)
		slots *= 2;
	names.slot = calloc(slots, sizeof(*names.slot));
	names.mask = slots - 1;
	if (!L->c->rules || !names.slot) {
		free(names.slot);
		return oom(L);
	}
	for (unsigned i = 0; i < n && r == 0; i++) {
		/* Count first: config_free() frees the lists of n_rules rules,
		 * including a half-built one. */
		L->c->n_rules = i + 1;
		r = load_rule(L, config_setting_get_elem(g, i), i, &names);
	}
	free(names.slot);
	return r;
}

/* ------------------------------------------------------------------ */
/* Text pre-scan                                                        */

/* libconfig 1.5 truncates integer literals beyond 32 bits (64 with L)
 * without an error, so 4294967356 would load as 60: find those first.
 * Also refuses @include (see the file header). Strings and comments are
 * skipped so their contents never count. */
static int prescan(struct ld *L, const char *t)
{
	unsigned line = 1;
	bool bol = true;
	const char *p = t;

	while (*p) {
		char ch = *p;

		if (ch == '\n') {
			line++;
			bol = true;
			p++;
			continue;
		}
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
			p++;
			continue;
		}
		if (bol && ch == '@' && !strncmp(p, "@include", 8)) {
			snprintf(L->err, L->errlen,
				 "%s:%u: @include: not supported (the config is one self-contained text)",
				 L->file, line);
			return -EINVAL;
		}
		bol = false;
		if (ch == '#' || (ch == '/' && p[1] == '/')) {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		if (ch == '/' && p[1] == '*') {
			for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
				if (*p == '\n')
					line++;
			if (*p)
				p += 2;
			continue;
		}
		if (ch == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (*p == '\n')
					line++;
			}
			if (*p)
				p++;
			continue;
		}
		if (isalpha((unsigned char)ch) || ch == '*' || ch == '_') {
			while (isalnum((unsigned char)*p) || *p == '_' || *p == '*' ||
			       *p == '-')
				p++;
			continue;
		}
		if (isdigit((unsigned char)ch) ||
		    ((ch == '-' || ch == '+') && isdigit((unsigned char)p[1]))) {
			const char *tok = p, *q;
			char buf[64];
			size_t n, nl = 0;
			bool neg = *p == '-', hex;
			unsigned long long v;

			p++;
			while (isalnum((unsigned char)*p) || *p == '.' ||
			       ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')))
				p++;
			n = (size_t)(p - tok);
			if (n >= sizeof(buf))
				n = sizeof(buf) - 1;
			memcpy(buf, tok, n);
			buf[n] = 0;
			while (n > 0 && buf[n - 1] == 'L' && nl < 2) {
				buf[--n] = 0;
				nl++;
			}
			q = buf + (*buf == '-' || *buf == '+');
			hex = q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
			if (hex ? (q[2] == 0 || strspn(q + 2, "0123456789abcdefABCDEF") != strlen(q + 2)) :
				  strspn(q, "0123456789") != strlen(q))
				continue; /* a float or something libconfig will judge */
			errno = 0;
			v = strtoull(hex ? q + 2 : q, NULL, hex ? 16 : 10);
			if (errno == ERANGE ||
			    (nl == 0 && (hex ? v > 0xffffffffull :
					     v > (neg ? 2147483648ull : 2147483647ull))) ||
			    (nl > 0 && !hex && v > (neg ? 9223372036854775808ull :
							  9223372036854775807ull))) {
				snprintf(L->err, L->errlen,
					 "%s:%u: %.*s: integer out of range%s", L->file,
					 line, (int)(p - tok), tok,
					 nl == 0 ? " (32-bit; append L for a 64-bit value)" : "");
				return -EINVAL;
			}
			continue;
		}
		p++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Entry points                                                         */

static void set_defaults(struct tandem_config *c)
{
	static const uint32_t ka[] = { 900, 880, 860, 820, 740, 580, 260 };

	c->queues = 1;
	c->queue_first = 0;
	c->queue_len = 4096;
	c->max_sessions = 262144;
	c->timeout[TO_TCP_INITIAL] = 20;
	c->timeout[TO_TCP_ESTABLISHED] = 1800;
	c->timeout[TO_TCP_WAIT] = 30;
	c->timeout[TO_TCP_TIME_WAIT] = 15;
	c->timeout[TO_TCP_CLOSED] = 2;
	c->timeout[TO_UDP] = 60;
	c->timeout[TO_ICMP] = 60;
	c->timeout[TO_OTHER] = 1800;
	c->rst_invalidate = true;
	c->fin_invalidate = false;
	c->syn_check = true;
	c->evict_unreplied = true;
	c->sequence_check = true;
	c->age_high_pct = 90;
	c->age_low_pct = 70;
	c->early_ageout = 20;
	memcpy(c->ka_offsets, ka, sizeof(ka));
	c->n_ka_offsets = sizeof(ka) / sizeof(ka[0]);
	c->ka_max_lifetime = 86400;
	c->reload_flush = false;
}

static int load_text(const char *text, const char *file,
		     struct tandem_config **ret, char *err, size_t errlen)
{
	char dummy[1];
	struct ld L = { .file = file, .err = err ? err : dummy,
			.errlen = err ? errlen : sizeof(dummy) };
	config_t cf;
	int r;

	if (L.errlen)
		L.err[0] = 0;
	if (!ret || !text)
		return -EINVAL;
	r = prescan(&L, text);
	if (r < 0)
		return r;
	config_init(&cf);
	L.cf = &cf;
	if (config_read_string(&cf, text) != CONFIG_TRUE) {
		snprintf(L.err, L.errlen, "%s:%d: %s", file, config_error_line(&cf),
			 config_error_text(&cf));
		config_destroy(&cf);
		return -EINVAL;
	}
	L.c = calloc(1, sizeof(*L.c));
	if (!L.c || !(L.c->path = strdup(file))) {
		r = oom(&L);
		goto out;
	}
	set_defaults(L.c);
	if ((r = check_group(&L, config_root_setting(&cf), "", root_keys)) < 0 ||
	    (r = load_node(&L)) < 0 || (r = load_datapath(&L)) < 0 ||
	    (r = load_table(&L)) < 0 || (r = load_timeouts(&L)) < 0 ||
	    (r = load_tcp(&L)) < 0 || (r = load_ageing(&L)) < 0 ||
	    (r = load_keepalive(&L)) < 0 || (r = load_reload(&L)) < 0 ||
	    (r = load_control(&L)) < 0 || (r = load_zones(&L)) < 0 ||
	    (r = load_objects(&L, &addr_kind, &L.addr_objs, &L.n_addr_objs)) < 0 ||
	    (r = load_objects(&L, &svc_kind, &L.svc_objs, &L.n_svc_objs)) < 0 ||
	    (r = load_rules(&L)) < 0 || (r = check_af_xdp(&L)) < 0)
		goto out;
	*ret = L.c;
	L.c = NULL;
out:
	free_objects(L.addr_objs, L.n_addr_objs);
	free_objects(L.svc_objs, L.n_svc_objs);
	config_free(L.c);
	config_destroy(&cf);
	return r;
}

int config_load_string(const char *text, struct tandem_config **ret, char *err,
		       size_t errlen)
{
	return load_text(text, "<string>", ret, err, errlen);
}

int config_load_file(const char *path, struct tandem_config **ret, char *err,
		     size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int r;

	if (!path || !ret)
		return -EINVAL;
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	for (;;) {
		size_t got;

		if (n + 1 >= cap) {
			char *nb;

			if (feof(f))
				break;
			if (cap >= CFG_FILE_MAX) {
				free(buf);
				fclose(f);
				if (err && errlen)
					snprintf(err, errlen, "%s: larger than %u MiB", path,
						 CFG_FILE_MAX >> 20);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 16384;
			if (cap > CFG_FILE_MAX)
				cap = CFG_FILE_MAX;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	r = ferror(f) ? -EIO : 0;
	fclose(f);
	if (r == 0 && memchr(buf, 0, n))
		r = -EINVAL; /* a NUL would silently end libconfig's input */
	if (r < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path,
				 r == -EIO ? "read error" : "contains a NUL byte");
		free(buf);
		return r;
	}
	buf[n] = 0;
	r = load_text(buf, path, ret, err, errlen);
	free(buf);
	return r;
}

void config_free(struct tandem_config *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n_zones && i < CFG_MAX_ZONES; i++)
		free(c->zones[i].networks);
	for (unsigned i = 0; c->rules && i < c->n_rules; i++) {
		free(c->rules[i].src);
		free(c->rules[i].dst);
		free(c->rules[i].svc);
	}
	free(c->rules);
	free(c->path);
	free(c);
}

static bool prefix_has(const struct cfg_prefix *p, uint8_t family,
		       const uint8_t *addr)
{
	unsigned full = p->len / 8, rest = p->len % 8;

	if (p->family != family || memcmp(p->addr, addr, full) != 0)
		return false;
	return rest == 0 ||
	       ((p->addr[full] ^ addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

uint8_t config_zone_of_addr(const struct tandem_config *c, uint8_t family,
			    const uint8_t *addr)
{
	uint8_t zone = 0;
	int best = -1;

	if (!c || !addr)
		return 0;
	for (unsigned i = 0; i < c->n_zones; i++)
		for (unsigned j = 0; j < c->zones[i].n_networks; j++) {
			const struct cfg_prefix *p = &c->zones[i].networks[j];

			if ((int)p->len > best && prefix_has(p, family, addr)) {
				best = p->len;
				zone = c->zones[i].id;
			}
		}
	return zone;
}

uint8_t config_iface_id(const struct tandem_config *c, const char *name)
{
	if (!c || !name)
		return 0;
	for (unsigned i = 0; i < c->n_ifaces; i++)
		if (strcmp(c->ifaces[i].name, name) == 0)
			return c->ifaces[i].id;
	return 0;
}

const char *config_zone_name(const struct tandem_config *c, uint8_t id)
{
	if (!c || id == 0 || id > c->n_zones)
		return "-";
	return c->zones[id - 1].name;
}
