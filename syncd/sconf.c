/*
 * sconf.c - tandem-syncd's configuration (see sconf.h, conf/syncd.conf).
 *
 * Must never: accept an unknown setting, a value out of its range, or
 * return anything on error.
 */
#include "sconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>
#include <sodium.h>

struct ctx {
	const char *file;
	char *err;
	size_t errlen;
};

static int fail(struct ctx *x, const config_setting_t *s, const char *name,
		const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errlen, "%s:%d: %s: %s", x->file,
		 s ? config_setting_source_line(s) : 0, name, msg);
	return -EINVAL;
}

static void full_name(char *out, size_t n, const char *prefix, const char *name)
{
	if (prefix && *prefix)
		snprintf(out, n, "%s.%s", prefix, name);
	else
		snprintf(out, n, "%s", name);
}

/* Every member of group g must be in allowed (NULL-terminated). */
static int check_members(struct ctx *x, const config_setting_t *g,
			 const char *prefix, const char *const *allowed)
{
	int n = config_setting_length(g);
	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = name && !strcmp(name, *a);
		if (!ok) {
			char fn[128];
			full_name(fn, sizeof(fn), prefix, name ? name : "?");
			return fail(x, m, fn, "unknown setting");
		}
	}
	return 0;
}

static int get_uint(struct ctx *x, const config_setting_t *g, const char *prefix,
		    const char *name, uint32_t *out, uint32_t lo, uint32_t hi,
		    bool required)
{
	char fn[128];
	full_name(fn, sizeof(fn), prefix, name);
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	if (!s) {
		if (required)
			return fail(x, g, fn, "required");
		return 0;
	}
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return fail(x, s, fn, "must be an integer");
	long long v = config_setting_get_int64(s);
	if (v < lo || v > hi)
		return fail(x, s, fn, "%lld is out of range %u..%u", v, lo, hi);
	*out = (uint32_t)v;
	return 0;
}

static int get_bool(struct ctx *x, const config_setting_t *g, const char *prefix,
		    const char *name, bool *out)
{
	char fn[128];
	full_name(fn, sizeof(fn), prefix, name);
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(x, s, fn, "must be true or false");
	*out = config_setting_get_bool(s);
	return 0;
}

static int get_str(struct ctx *x, const config_setting_t *g, const char *prefix,
		   const char *name, char *out, size_t n, bool required)
{
	char fn[128];
	full_name(fn, sizeof(fn), prefix, name);
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	if (!s) {
		if (required)
			return fail(x, g, fn, "required");
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(x, s, fn, "must be a string");
	const char *v = config_setting_get_string(s);
	if (strlen(v) >= n)
		return fail(x, s, fn, "longer than %zu characters", n - 1);
	snprintf(out, n, "%s", v);
	return 0;
}

static const config_setting_t *get_group(struct ctx *x,
					 const config_setting_t *root,
					 const char *name, int *r)
{
	const config_setting_t *g = config_setting_get_member(root, name);
	if (g && config_setting_type(g) != CONFIG_TYPE_GROUP) {
		*r = fail(x, g, name, "must be a group { ... }");
		return NULL;
	}
	return g;
}

static bool numeric_addr(const char *s)
{
	uint8_t b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static int parse_vip(struct ctx *x, const config_setting_t *s, const char *fn,
		     const char *text, struct sconf_vip *v)
{
	char a[64];
	snprintf(a, sizeof(a), "%s", text);
	char *slash = strchr(a, '/');
	long plen = -1;
	if (slash) {
		char *end;
		*slash = 0;
		plen = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1)
			return fail(x, s, fn, "bad prefix length in \"%s\"", text);
	}
	if (inet_pton(AF_INET, a, v->addr) == 1) {
		v->family = AF_INET;
		if (plen < 0)
			plen = 32;
		if (plen > 32)
			return fail(x, s, fn, "prefix length above 32");
	} else if (inet_pton(AF_INET6, a, v->addr) == 1) {
		v->family = AF_INET6;
		if (plen < 0)
			plen = 128;
		if (plen > 128)
			return fail(x, s, fn, "prefix length above 128");
	} else {
		return fail(x, s, fn, "\"%s\" is not an address/prefix", text);
	}
	v->plen = (uint8_t)plen;
	snprintf(v->text, sizeof(v->text), "%s", text);
	return 0;
}

static int load(config_t *cf, const char *file, struct sconf **ret, char *err,
		size_t errlen)
{
	struct ctx x = {file, err, errlen};
	const config_setting_t *root = config_root_setting(cf);
	static const char *const top[] = {
		"node_id", "cluster", "node_socket", "control_socket", "mode",
		"state_file", "sync", "peers", "heartbeat", "data_heartbeat",
		"role", "vips", "garp", "config_sync", "track_interfaces",
		"notify", NULL};
	int r = check_members(&x, root, "", top);
	if (r < 0)
		return r;
	struct sconf *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	snprintf(c->path, sizeof(c->path), "%s", file);
	/* defaults */
	snprintf(c->node_socket, sizeof(c->node_socket), "/run/tandem/node.sock");
	snprintf(c->control_socket, sizeof(c->control_socket),
		 "/run/tandem/syncd.sock");
	snprintf(c->listen, sizeof(c->listen), "0.0.0.0");
	c->port = 7790;
	c->max_frame = 4u << 20;
	c->batch_events = 256;
	c->flush_ms = 0;
	c->bulk_rate = 50000;
	c->backlog_bytes = 64u << 20;
	c->apply_inflight = 8;
	c->hb_interval_ms = 100;
	c->dead_count = 3;
	c->priority = 100;
	c->hold_down_ms = 5000;
	c->garp_count = 3;
	c->garp_interval_ms = 100;
	c->config_sync = true;
	c->poll_ms = 1000;
	c->n_keep = 2;
	snprintf(c->keep_local[0], sizeof(c->keep_local[0]), "node");
	snprintf(c->keep_local[1], sizeof(c->keep_local[1]), "control");

	uint32_t v = 0;
	if ((r = get_uint(&x, root, "", "node_id", &v, 1, 65535, true)))
		goto out;
	c->node_id = (uint16_t)v;

	const config_setting_t *g = get_group(&x, root, "cluster", &r);
	if (r)
		goto out;
	if (!g) {
		r = fail(&x, root, "cluster", "required (id and key)");
		goto out;
	}
	static const char *const cl[] = {"id", "key", NULL};
	if ((r = check_members(&x, g, "cluster", cl)) ||
	    (r = get_uint(&x, g, "cluster", "id", &c->cluster_id, 0, UINT32_MAX,
			  true)))
		goto out;
	char hex[2 * SYNC_KEY_LEN + 8] = "";
	if ((r = get_str(&x, g, "cluster", "key", hex, sizeof(hex), true)))
		goto out;
	if (sync_key_from_hex(hex, &c->key) < 0) {
		r = fail(&x, config_setting_get_member(g, "key"), "cluster.key",
			 "must be %d hex digits (a 32-byte HMAC-SHA256 key)",
			 2 * SYNC_KEY_LEN);
		goto out;
	}
	sodium_memzero(hex, sizeof(hex));

	if ((r = get_str(&x, root, "", "node_socket", c->node_socket,
			 sizeof(c->node_socket), false)) ||
	    (r = get_str(&x, root, "", "control_socket", c->control_socket,
			 sizeof(c->control_socket), false)) ||
	    (r = get_str(&x, root, "", "state_file", c->state_file,
			 sizeof(c->state_file), false)))
		goto out;
	char mode[32] = "election";
	if ((r = get_str(&x, root, "", "mode", mode, sizeof(mode), false)))
		goto out;
	if (!strcmp(mode, "keepalived")) {
		c->external = true;
	} else if (strcmp(mode, "election")) {
		r = fail(&x, config_setting_get_member(root, "mode"), "mode",
			 "must be \"election\" or \"keepalived\"");
		goto out;
	}

	g = get_group(&x, root, "sync", &r);
	if (r)
		goto out;
	static const char *const sy[] = {"listen", "port", "max_frame",
		"batch_events", "flush_ms", "bulk_rate", "backlog",
		"apply_inflight", NULL};
	if (g && (r = check_members(&x, g, "sync", sy)))
		goto out;
	v = c->port;
	if ((r = get_str(&x, g, "sync", "listen", c->listen, sizeof(c->listen),
			 false)) ||
	    (r = get_uint(&x, g, "sync", "port", &v, 1, 65535, false)) ||
	    (r = get_uint(&x, g, "sync", "max_frame", &c->max_frame, 65536,
			  64u << 20, false)) ||
	    (r = get_uint(&x, g, "sync", "batch_events", &c->batch_events, 1,
			  4096, false)) ||
	    (r = get_uint(&x, g, "sync", "flush_ms", &c->flush_ms, 0, 1000,
			  false)) ||
	    (r = get_uint(&x, g, "sync", "bulk_rate", &c->bulk_rate, 100,
			  10000000, false)) ||
	    (r = get_uint(&x, g, "sync", "backlog", &c->backlog_bytes, 1u << 20,
			  1u << 30, false)) ||
	    (r = get_uint(&x, g, "sync", "apply_inflight", &c->apply_inflight, 1,
			  64, false)))
		goto out;
	c->port = (uint16_t)v;
	if (!numeric_addr(c->listen)) {
		r = fail(&x, config_setting_get_member(g, "listen"), "sync.listen",
			 "must be a numeric IPv4 or IPv6 address");
		goto out;
	}

	const config_setting_t *pl = config_setting_get_member(root, "peers");
	if (pl) {
		if (config_setting_type(pl) != CONFIG_TYPE_LIST) {
			r = fail(&x, pl, "peers", "must be a list ( { ... }, ... )");
			goto out;
		}
		int n = config_setting_length(pl);
		if (n > SCONF_MAX_PEERS) {
			r = fail(&x, pl, "peers", "at most %d peers", SCONF_MAX_PEERS);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			const config_setting_t *p = config_setting_get_elem(pl, (unsigned)i);
			char pre[32];
			snprintf(pre, sizeof(pre), "peers.[%d]", i);
			static const char *const pk[] = {"id", "address", "port", NULL};
			struct sconf_peer *sp = &c->peers[c->n_peers];
			uint32_t id = 0, port = 7790;
			if (config_setting_type(p) != CONFIG_TYPE_GROUP) {
				r = fail(&x, p, pre, "must be a group { ... }");
				goto out;
			}
			if ((r = check_members(&x, p, pre, pk)) ||
			    (r = get_uint(&x, p, pre, "id", &id, 1, 65535, true)) ||
			    (r = get_str(&x, p, pre, "address", sp->address,
					 sizeof(sp->address), true)) ||
			    (r = get_uint(&x, p, pre, "port", &port, 1, 65535, false)))
				goto out;
			if (!numeric_addr(sp->address)) {
				r = fail(&x, p, pre, "address must be numeric IPv4/IPv6");
				goto out;
			}
			if (id == c->node_id) {
				r = fail(&x, p, pre, "id %u is this node's own id", id);
				goto out;
			}
			for (unsigned k = 0; k < c->n_peers; k++)
				if (c->peers[k].id == id) {
					r = fail(&x, p, pre, "id %u listed twice", id);
					goto out;
				}
			sp->id = (uint16_t)id;
			sp->port = (uint16_t)port;
			c->n_peers++;
		}
	}

	g = get_group(&x, root, "heartbeat", &r);
	if (r)
		goto out;
	static const char *const hb[] = {"interval_ms", "dead_count", NULL};
	if (g && ((r = check_members(&x, g, "heartbeat", hb)) ||
		  (r = get_uint(&x, g, "heartbeat", "interval_ms",
				&c->hb_interval_ms, 10, 10000, false)) ||
		  (r = get_uint(&x, g, "heartbeat", "dead_count", &c->dead_count,
				2, 100, false))))
		goto out;

	g = get_group(&x, root, "data_heartbeat", &r);
	if (r)
		goto out;
	if (g) {
		static const char *const dh[] = {"bind", "peer", "port",
						 "peer_port", NULL};
		uint32_t port = 7791, pport = 0;
		if ((r = check_members(&x, g, "data_heartbeat", dh)) ||
		    (r = get_str(&x, g, "data_heartbeat", "bind", c->data_bind,
				 sizeof(c->data_bind), true)) ||
		    (r = get_str(&x, g, "data_heartbeat", "peer", c->data_peer,
				 sizeof(c->data_peer), true)) ||
		    (r = get_uint(&x, g, "data_heartbeat", "port", &port, 1, 65535,
				  false)) ||
		    (r = get_uint(&x, g, "data_heartbeat", "peer_port", &pport, 1,
				  65535, false)))
			goto out;
		if (!numeric_addr(c->data_bind) || !numeric_addr(c->data_peer)) {
			r = fail(&x, g, "data_heartbeat",
				 "bind and peer must be numeric IPv4/IPv6 addresses");
			goto out;
		}
		c->data_hb = true;
		c->data_port = (uint16_t)port;
		c->data_peer_port = (uint16_t)(pport ? pport : port);
	}

	g = get_group(&x, root, "role", &r);
	if (r)
		goto out;
	static const char *const ro[] = {"priority", "preempt", "hold_down_ms",
					 "init_wait_ms", NULL};
	if (g && ((r = check_members(&x, g, "role", ro)) ||
		  (r = get_uint(&x, g, "role", "priority", &c->priority, 1, 255,
				false)) ||
		  (r = get_bool(&x, g, "role", "preempt", &c->preempt)) ||
		  (r = get_uint(&x, g, "role", "hold_down_ms", &c->hold_down_ms,
				0, 3600000, false)) ||
		  (r = get_uint(&x, g, "role", "init_wait_ms", &c->init_wait_ms,
				0, 600000, false))))
		goto out;
	if (!c->init_wait_ms)
		c->init_wait_ms = 3 * c->hb_interval_ms * c->dead_count;

	const config_setting_t *vl = config_setting_get_member(root, "vips");
	if (vl) {
		if (config_setting_type(vl) != CONFIG_TYPE_LIST) {
			r = fail(&x, vl, "vips", "must be a list ( { ... }, ... )");
			goto out;
		}
		int n = config_setting_length(vl);
		if (n > SCONF_MAX_VIPS) {
			r = fail(&x, vl, "vips", "at most %d addresses", SCONF_MAX_VIPS);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			const config_setting_t *p = config_setting_get_elem(vl, (unsigned)i);
			char pre[32], a[64] = "";
			snprintf(pre, sizeof(pre), "vips.[%d]", i);
			static const char *const vk[] = {"address", "interface", NULL};
			struct sconf_vip *sv = &c->vips[c->n_vips];
			if (config_setting_type(p) != CONFIG_TYPE_GROUP) {
				r = fail(&x, p, pre, "must be a group { ... }");
				goto out;
			}
			if ((r = check_members(&x, p, pre, vk)) ||
			    (r = get_str(&x, p, pre, "address", a, sizeof(a), true)) ||
			    (r = get_str(&x, p, pre, "interface", sv->ifname,
					 sizeof(sv->ifname), true)) ||
			    (r = parse_vip(&x, p, pre, a, sv)))
				goto out;
			c->n_vips++;
		}
	}

	if ((r = get_str(&x, root, "", "notify", c->notify, sizeof(c->notify),
			 false)))
		goto out;
	if (c->notify[0] && c->notify[0] != '/') {
		r = fail(&x, config_setting_get_member(root, "notify"), "notify",
			 "must be an absolute path");
		goto out;
	}
	const config_setting_t *tl = config_setting_get_member(root, "track_interfaces");
	if (tl) {
		int t = config_setting_type(tl);
		int n = config_setting_length(tl);
		if ((t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) ||
		    n > SCONF_MAX_TRACK) {
			r = fail(&x, tl, "track_interfaces",
				 "must be an array of at most %d interface names",
				 SCONF_MAX_TRACK);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			const char *s = config_setting_get_string_elem(tl, i);
			if (!s || !s[0] || strlen(s) >= sizeof(c->track[0])) {
				r = fail(&x, tl, "track_interfaces",
					 "element %d is not an interface name", i);
				goto out;
			}
			snprintf(c->track[c->n_track++], sizeof(c->track[0]), "%s", s);
		}
	}

	g = get_group(&x, root, "garp", &r);
	if (r)
		goto out;
	static const char *const ga[] = {"count", "interval_ms", NULL};
	if (g && ((r = check_members(&x, g, "garp", ga)) ||
		  (r = get_uint(&x, g, "garp", "count", &c->garp_count, 0, 100,
				false)) ||
		  (r = get_uint(&x, g, "garp", "interval_ms", &c->garp_interval_ms,
				10, 10000, false))))
		goto out;

	g = get_group(&x, root, "config_sync", &r);
	if (r)
		goto out;
	if (g) {
		static const char *const cs[] = {"enabled", "poll_ms", "keep_local",
						 NULL};
		if ((r = check_members(&x, g, "config_sync", cs)) ||
		    (r = get_bool(&x, g, "config_sync", "enabled", &c->config_sync)) ||
		    (r = get_uint(&x, g, "config_sync", "poll_ms", &c->poll_ms, 100,
				  60000, false)))
			goto out;
		const config_setting_t *kl = config_setting_get_member(g, "keep_local");
		if (kl) {
			int t = config_setting_type(kl);
			int n = config_setting_length(kl);
			if ((t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) ||
			    n > SCONF_MAX_KEEP) {
				r = fail(&x, kl, "config_sync.keep_local",
					 "must be an array of at most %d names",
					 SCONF_MAX_KEEP);
				goto out;
			}
			c->n_keep = 0;
			for (int i = 0; i < n; i++) {
				const char *s = config_setting_get_string_elem(kl, i);
				if (!s || strlen(s) >= sizeof(c->keep_local[0])) {
					r = fail(&x, kl, "config_sync.keep_local",
						 "element %d is not a short string", i);
					goto out;
				}
				snprintf(c->keep_local[c->n_keep++],
					 sizeof(c->keep_local[0]), "%s", s);
			}
		}
	}
	*ret = c;
	return 0;
out:
	sconf_free(c);
	return r;
}

static int finish(config_t *cf, int ok, const char *file, struct sconf **ret,
		  char *err, size_t errlen)
{
	int r;
	if (!ok) {
		snprintf(err, errlen, "%s:%d: %s", config_error_file(cf)
			 ? config_error_file(cf) : file, config_error_line(cf),
			 config_error_text(cf));
		r = -EINVAL;
	} else {
		r = load(cf, file, ret, err, errlen);
	}
	config_destroy(cf);
	return r;
}

int sconf_load_file(const char *path, struct sconf **ret, char *err,
		    size_t errlen)
{
	config_t cf;
	config_init(&cf);
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		config_destroy(&cf);
		return -e;
	}
	int ok = config_read(&cf, f);
	fclose(f);
	return finish(&cf, ok == CONFIG_TRUE, path, ret, err, errlen);
}

int sconf_load_string(const char *text, struct sconf **ret, char *err,
		      size_t errlen)
{
	config_t cf;
	config_init(&cf);
	int ok = config_read_string(&cf, text);
	return finish(&cf, ok == CONFIG_TRUE, "<string>", ret, err, errlen);
}

void sconf_free(struct sconf *c)
{
	if (!c)
		return;
	sodium_memzero(&c->key, sizeof(c->key));
	free(c);
}
