/*
 * auth.c - HMAC challenge check (libsodium) and the failed-login limiter.
 *
 * Must never: leave a computed MAC or decoded token on the stack after use
 * (sodium_memzero), or take a different path for an unknown user than for a
 * wrong answer before the comparison.
 */
#include "auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void auth_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int auth_hex_decode(const char *hex, uint8_t *out, size_t outmax,
		    size_t *ret_len)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > outmax)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int h = nibble(hex[2 * i]), l = nibble(hex[2 * i + 1]);
		if (h < 0 || l < 0)
			return -EINVAL;
		out[i] = (uint8_t)(h << 4 | l);
	}
	*ret_len = n / 2;
	return 0;
}

void auth_nonce(char out[AUTH_NONCE_HEX + 1])
{
	uint8_t raw[AUTH_NONCE_BYTES];

	randombytes_buf(raw, sizeof(raw));
	auth_hex_encode(raw, sizeof(raw), out);
}

static void hmac(const uint8_t *key, size_t keylen, const char *msg,
		 uint8_t out[AUTH_MAC_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg,
				      strlen(msg));
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void auth_hmac_hex(const uint8_t *key, size_t keylen, const char *msg,
		   char out[AUTH_MAC_HEX + 1])
{
	uint8_t mac[AUTH_MAC_BYTES];

	hmac(key, keylen, msg, mac);
	auth_hex_encode(mac, sizeof(mac), out);
	sodium_memzero(mac, sizeof(mac));
}

bool auth_check_hmac(const uint8_t *key, size_t keylen, const char *nonce_hex,
		     const char *answer_hex)
{
	static const uint8_t dummy[AUTH_TOKEN_MIN];
	uint8_t want[AUTH_MAC_BYTES], got[AUTH_MAC_BYTES];
	size_t n = 0;
	bool ok;

	/* Same work for a known and an unknown user. */
	hmac(key ? key : dummy, key ? keylen : sizeof(dummy), nonce_hex, want);
	if (auth_hex_decode(answer_hex, got, sizeof(got), &n) || n != sizeof(got))
		memset(got, 0, sizeof(got)), n = 0;
	ok = sodium_memcmp(want, got, sizeof(want)) == 0 && n == sizeof(got) &&
	     key != NULL;
	sodium_memzero(want, sizeof(want));
	sodium_memzero(got, sizeof(got));
	return ok;
}

bool auth_check_plain(const uint8_t *key, size_t keylen, const char *token_hex)
{
	uint8_t got[AUTH_TOKEN_MAX], pad[AUTH_TOKEN_MAX] = {0};
	size_t n = 0;
	bool ok;

	if (auth_hex_decode(token_hex, got, sizeof(got), &n))
		n = 0;
	/* Compare over the full buffer so the time does not depend on n. */
	if (key && keylen <= sizeof(pad))
		memcpy(pad, key, keylen);
	if (n < sizeof(got))
		memset(got + n, 0, sizeof(got) - n);
	ok = sodium_memcmp(pad, got, sizeof(pad)) == 0 && key != NULL &&
	     n == keylen;
	sodium_memzero(got, sizeof(got));
	sodium_memzero(pad, sizeof(pad));
	return ok;
}

/* ---------------------------------------------------------------- limiter */

struct lim_entry {
	uint8_t addr[16];
	bool used;
	uint32_t failures;     /* within the current window */
	uint64_t window_start; /* ms */
	uint64_t blocked_until;
	uint64_t last_seen;
};

struct auth_limiter {
	unsigned slots, max_failures;
	uint32_t window_ms, block_ms;
	struct lim_entry e[];
};

int auth_limiter_new(unsigned slots, unsigned max_failures, uint32_t window_ms,
		     uint32_t block_ms, struct auth_limiter **ret)
{
	if (!slots || slots > 1u << 20 || !max_failures)
		return -EINVAL;
	struct auth_limiter *l = calloc(1, sizeof(*l) + slots * sizeof(l->e[0]));
	if (!l)
		return -ENOMEM;
	l->slots = slots;
	l->max_failures = max_failures;
	l->window_ms = window_ms;
	l->block_ms = block_ms;
	*ret = l;
	return 0;
}

void auth_limiter_free(struct auth_limiter *l)
{
	free(l);
}

/* Linear scan: the table is small (hundreds) and only failed or blocked
 * logins reach it, never a command. */
static struct lim_entry *find(struct auth_limiter *l, const uint8_t addr[16])
{
	for (unsigned i = 0; i < l->slots; i++)
		if (l->e[i].used && memcmp(l->e[i].addr, addr, 16) == 0)
			return &l->e[i];
	return NULL;
}

bool auth_limiter_blocked(struct auth_limiter *l, const uint8_t addr[16],
			  uint64_t now_ms)
{
	struct lim_entry *e = find(l, addr);

	return e && now_ms < e->blocked_until;
}

bool auth_limiter_fail(struct auth_limiter *l, const uint8_t addr[16],
		       uint64_t now_ms)
{
	struct lim_entry *e = find(l, addr);

	if (!e) {
		/* A free slot, else the one not seen for longest. */
		struct lim_entry *old = &l->e[0];
		for (unsigned i = 0; i < l->slots; i++) {
			if (!l->e[i].used) {
				old = &l->e[i];
				break;
			}
			if (l->e[i].last_seen < old->last_seen)
				old = &l->e[i];
		}
		e = old;
		memset(e, 0, sizeof(*e));
		e->used = true;
		memcpy(e->addr, addr, 16);
		e->window_start = now_ms;
	}
	e->last_seen = now_ms;
	if (now_ms - e->window_start >= l->window_ms) {
		e->window_start = now_ms;
		e->failures = 0;
	}
	if (e->failures < UINT32_MAX)
		e->failures++;
	if (e->failures >= l->max_failures) {
		e->blocked_until = now_ms + l->block_ms;
		e->failures = 0;
		e->window_start = now_ms;
	}
	return now_ms < e->blocked_until;
}
