/*
 * auth.h - challenge authentication and the failed-login limiter.
 *
 * Challenge: the server's greeting carries a fresh random nonce (32 bytes,
 * 64 lowercase hex characters). The client answers
 *   auth <user> <hex(HMAC-SHA256(key = token bytes, msg = nonce hex text))>
 * and the server compares in constant time (sodium_memcmp). An unknown user
 * is checked against a dummy key, so the time taken does not tell whether
 * the name exists.
 *
 * Limiter: per source address, at most max failures within window_ms; the
 * failure that reaches max blocks the address for block_ms. A fixed table
 * (no growth with the number of attackers): when full, the entry seen
 * longest ago is reused.
 *
 * Must never: compare secrets with memcmp/strcmp, log a token or an answer,
 * or allocate per attempt.
 */
#ifndef TANDEM_MGMT_AUTH_H
#define TANDEM_MGMT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_NONCE_BYTES 32
#define AUTH_NONCE_HEX   (AUTH_NONCE_BYTES * 2)
#define AUTH_MAC_BYTES   32
#define AUTH_MAC_HEX     (AUTH_MAC_BYTES * 2)
#define AUTH_TOKEN_MIN   16 /* bytes */
#define AUTH_TOKEN_MAX   64

/* libsodium must be initialised (sodium_init) before any of these. */

/* Lowercase hex of n bytes into out (2n + 1 bytes with the NUL). */
void auth_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly strlen(hex)/2 bytes (even length, <= outmax). */
int auth_hex_decode(const char *hex, uint8_t *out, size_t outmax,
		    size_t *ret_len);

/* A fresh nonce as hex text. */
void auth_nonce(char out[AUTH_NONCE_HEX + 1]);

/* hex(HMAC-SHA256(key, msg)) - what the client sends. */
void auth_hmac_hex(const uint8_t *key, size_t keylen, const char *msg,
		   char out[AUTH_MAC_HEX + 1]);

/* key NULL = unknown user: a dummy key is used and the result is false. */
bool auth_check_hmac(const uint8_t *key, size_t keylen, const char *nonce_hex,
		     const char *answer_hex);
/* Plain form (`auth USER password TOKEN`): token_hex against key. */
bool auth_check_plain(const uint8_t *key, size_t keylen, const char *token_hex);

struct auth_limiter;

int auth_limiter_new(unsigned slots, unsigned max_failures, uint32_t window_ms,
		     uint32_t block_ms, struct auth_limiter **ret);
void auth_limiter_free(struct auth_limiter *l); /* accepts NULL */
/* addr: 16 bytes, IPv4 as ::ffff:a.b.c.d. */
bool auth_limiter_blocked(struct auth_limiter *l, const uint8_t addr[16],
			  uint64_t now_ms);
/* Records a failure; returns true when the address is now blocked. */
bool auth_limiter_fail(struct auth_limiter *l, const uint8_t addr[16],
		       uint64_t now_ms);

#endif
