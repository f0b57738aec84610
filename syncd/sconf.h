/*
 * sconf.h - tandem-syncd's configuration (libconfig syntax, conf/syncd.conf
 * documents every setting with its default and range).
 *
 * Loading is all or nothing: a misspelt name, a wrong type or a value out
 * of range refuses the whole file with "FILE:LINE: SETTING: reason".
 *
 * Must never: return a half-filled config, or keep the key anywhere but in
 * the struct (freed with sodium_memzero).
 */
#ifndef TANDEM_SYNCD_SCONF_H
#define TANDEM_SYNCD_SCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync_msg.h"

#define SCONF_MAX_PEERS 16
#define SCONF_MAX_VIPS 32
#define SCONF_MAX_KEEP 8
#define SCONF_MAX_TRACK 8
#define SCONF_PATH_MAX 108       /* sun_path */

struct sconf_peer {
	uint16_t id;
	char address[64];           /* numeric IPv4 or IPv6 */
	uint16_t port;
};

struct sconf_vip {
	int family;                 /* AF_INET / AF_INET6 */
	uint8_t addr[16];
	uint8_t plen;
	char ifname[16];
	char text[64];              /* "10.1.0.1/16" as configured */
};

struct sconf {
	char path[4096];
	uint16_t node_id;
	uint32_t cluster_id;
	struct sync_key key;
	char node_socket[SCONF_PATH_MAX];
	char control_socket[SCONF_PATH_MAX];
	bool external;              /* mode = "keepalived" */
	char state_file[256];       /* "" = epoch not kept across restarts */

	/* sync link */
	char listen[64];
	uint16_t port;
	uint32_t max_frame;         /* payload bytes */
	uint32_t batch_events;      /* events per frame, live */
	uint32_t flush_ms;          /* extra wait for a partial batch; 0: none */
	uint32_t bulk_rate;         /* sessions/s of a bulk */
	uint32_t backlog_bytes;     /* unacknowledged frames kept per peer */
	uint32_t apply_inflight;    /* SYNC_APPLY requests in flight */

	unsigned n_peers;
	struct sconf_peer peers[SCONF_MAX_PEERS];

	/* heartbeats */
	uint32_t hb_interval_ms;
	uint32_t dead_count;
	bool data_hb;
	char data_bind[64];
	char data_peer[64];
	uint16_t data_port, data_peer_port;

	/* role */
	uint32_t priority;
	bool preempt;
	uint32_t hold_down_ms;
	uint32_t init_wait_ms;
	/* health: any tracked interface down (not up or no carrier) = fault */
	unsigned n_track;
	char track[SCONF_MAX_TRACK][16];
	char notify[256];           /* run on every role change; "" = none */

	unsigned n_vips;
	struct sconf_vip vips[SCONF_MAX_VIPS];
	uint32_t garp_count, garp_interval_ms;

	/* config replication */
	bool config_sync;
	uint32_t poll_ms;
	unsigned n_keep;
	char keep_local[SCONF_MAX_KEEP][32];
};

int sconf_load_file(const char *path, struct sconf **ret, char *err,
		    size_t errlen);
int sconf_load_string(const char *text, struct sconf **ret, char *err,
		      size_t errlen);
void sconf_free(struct sconf *c);   /* accepts NULL */

#endif
