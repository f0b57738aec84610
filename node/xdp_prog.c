/*
 * xdp_prog.c - the XDP program as BPF instructions, and its maps
 * (see xdp_prog.h for what it passes and what it redirects).
 *
 * Start-up and control thread only.
 */
#include "xdp_prog.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small assembler: instructions plus forward jumps to labels ---- */

enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };
enum lbl { L_PASS, L_V4, L_V6KEY, L_LOOKUP, L_MAX };

#define MAXI 96
struct as {
	struct bpf_insn in[MAXI];
	unsigned n;
	int at[L_MAX];             /* instruction index of each label */
	struct { unsigned insn; enum lbl to; } fix[32];
	unsigned nfix;
	bool overflow;
};

static void emit(struct as *a, uint8_t code, uint8_t dst, uint8_t src,
		 int16_t off, int32_t imm)
{
	if (a->n >= MAXI) {
		a->overflow = true;
		return;
	}
	a->in[a->n++] = (struct bpf_insn){.code = code, .dst_reg = dst,
					  .src_reg = src, .off = off,
					  .imm = imm};
}

static void label(struct as *a, enum lbl l) { a->at[l] = (int)a->n; }

static void jump_to(struct as *a, enum lbl l)
{
	if (a->nfix < sizeof(a->fix) / sizeof(a->fix[0])) {
		a->fix[a->nfix].insn = a->n - 1;
		a->fix[a->nfix++].to = l;
	} else {
		a->overflow = true;
	}
}

static void ldx(struct as *a, uint8_t size, uint8_t dst, uint8_t src, int16_t off)
{
	emit(a, BPF_LDX | size | BPF_MEM, dst, src, off, 0);
}

static void stx(struct as *a, uint8_t size, uint8_t dst, int16_t off, uint8_t src)
{
	emit(a, BPF_STX | size | BPF_MEM, dst, src, off, 0);
}

static void st(struct as *a, uint8_t size, uint8_t dst, int16_t off, int32_t imm)
{
	emit(a, BPF_ST | size | BPF_MEM, dst, 0, off, imm);
}

static void mov_reg(struct as *a, uint8_t dst, uint8_t src)
{
	emit(a, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}

static void mov_imm(struct as *a, uint8_t dst, int32_t imm)
{
	emit(a, BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

static void alu_imm(struct as *a, uint8_t op, uint8_t dst, int32_t imm)
{
	emit(a, BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
}

static void jmp_imm(struct as *a, uint8_t op, uint8_t dst, int32_t imm,
		    enum lbl l)
{
	emit(a, BPF_JMP | op | BPF_K, dst, 0, 0, imm);
	jump_to(a, l);
}

static void jmp_reg(struct as *a, uint8_t op, uint8_t dst, uint8_t src,
		    enum lbl l)
{
	emit(a, BPF_JMP | op | BPF_X, dst, src, 0, 0);
	jump_to(a, l);
}

static void ja(struct as *a, enum lbl l)
{
	emit(a, BPF_JMP | BPF_JA, 0, 0, 0, 0);
	jump_to(a, l);
}

static void ld_map(struct as *a, uint8_t dst, int fd)
{
	emit(a, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
	emit(a, 0, 0, 0, 0, 0);
}

static void call(struct as *a, int32_t fn) { emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, fn); }
static void ret(struct as *a) { emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

static int resolve(struct as *a)
{
	if (a->overflow)
		return -E2BIG;
	for (unsigned i = 0; i < a->nfix; i++) {
		int off = a->at[a->fix[i].to] - (int)a->fix[i].insn - 1;
		if (off < 0)
			return -EINVAL; /* forward jumps only */
		a->in[a->fix[i].insn].off = (int16_t)off;
	}
	return 0;
}

/* Frame offsets: Ethernet header 14 bytes, then IP. */
#define ETH 14
#define XMD_DATA 0
#define XMD_DATA_END 4
#define XMD_RXQ 16

/* Little-endian loads of big-endian fields (x86, arm64 and every host the
 * node builds for): ethertype 0x0800 reads as 0x0008. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "xdp_prog.c writes its constants for a little-endian host"
#endif
#define LE_IPV4 0x0008
#define LE_IPV6 0xdd86
#define LE_V4MAPPED 0xffff0000 /* bytes 00 00 ff ff */

static void build(struct as *a, const uint8_t mac[6], int local_fd, int xsk_fd,
		  unsigned miss)
{
	mov_reg(a, R6, R1);                          /* r6 = ctx */
	ldx(a, BPF_W, R7, R6, XMD_DATA);             /* r7 = data */
	ldx(a, BPF_W, R8, R6, XMD_DATA_END);         /* r8 = data_end */
	/* Ethernet + 20 bytes of IPv4 must be there */
	mov_reg(a, R2, R7);
	alu_imm(a, BPF_ADD, R2, ETH + 20);
	jmp_reg(a, BPF_JGT, R2, R8, L_PASS);
	/* not to this interface's MAC (a bridge floods unicast it has not
	 * learnt; broadcast, multicast): the kernel's, which drops what is
	 * for other hosts as any router does */
	ldx(a, BPF_W, R2, R7, 0);
	jmp_imm(a, BPF_JNE, R2, (int32_t)(mac[0] | mac[1] << 8 | mac[2] << 16 |
					  (uint32_t)mac[3] << 24), L_PASS);
	ldx(a, BPF_H, R2, R7, 4);
	jmp_imm(a, BPF_JNE, R2, mac[4] | mac[5] << 8, L_PASS);
	ldx(a, BPF_H, R2, R7, 12);                   /* ethertype */
	jmp_imm(a, BPF_JEQ, R2, LE_IPV4, L_V4);
	jmp_imm(a, BPF_JNE, R2, LE_IPV6, L_PASS);

	/* IPv6: 40-byte header */
	mov_reg(a, R2, R7);
	alu_imm(a, BPF_ADD, R2, ETH + 40);
	jmp_reg(a, BPF_JGT, R2, R8, L_PASS);
	ldx(a, BPF_B, R2, R7, ETH + 7);              /* hop limit */
	jmp_imm(a, BPF_JLE, R2, 1, L_PASS);
	ldx(a, BPF_B, R2, R7, ETH + 24);             /* fe80::/10 */
	jmp_imm(a, BPF_JNE, R2, 0xfe, L_V6KEY);
	ldx(a, BPF_B, R2, R7, ETH + 25);
	alu_imm(a, BPF_AND, R2, 0xc0);
	jmp_imm(a, BPF_JEQ, R2, 0x80, L_PASS);
	label(a, L_V6KEY);
	for (int i = 0; i < 4; i++) {                /* key = destination */
		ldx(a, BPF_W, R2, R7, (int16_t)(ETH + 24 + 4 * i));
		stx(a, BPF_W, R10, (int16_t)(-16 + 4 * i), R2);
	}
	ja(a, L_LOOKUP);

	/* IPv4 */
	label(a, L_V4);
	ldx(a, BPF_B, R2, R7, ETH + 8);              /* TTL */
	jmp_imm(a, BPF_JLE, R2, 1, L_PASS);
	st(a, BPF_W, R10, -16, 0);                   /* key = ::ffff:dst */
	st(a, BPF_W, R10, -12, 0);
	st(a, BPF_W, R10, -8, (int32_t)LE_V4MAPPED);
	ldx(a, BPF_W, R2, R7, ETH + 16);
	stx(a, BPF_W, R10, -4, R2);

	label(a, L_LOOKUP);
	ld_map(a, R1, local_fd);
	mov_reg(a, R2, R10);
	alu_imm(a, BPF_ADD, R2, -16);
	call(a, BPF_FUNC_map_lookup_elem);
	jmp_imm(a, BPF_JNE, R0, 0, L_PASS);          /* ours: the kernel's */
	ld_map(a, R1, xsk_fd);
	ldx(a, BPF_W, R2, R6, XMD_RXQ);
	mov_imm(a, R3, (int32_t)miss);               /* no socket bound */
	call(a, BPF_FUNC_redirect_map);
	ret(a);

	label(a, L_PASS);
	mov_imm(a, R0, XDP_PASS);
	ret(a);
}

int xdp_prog_load(const uint8_t mac[6], int local_fd, int xsk_fd,
		  unsigned miss_action, char *log, size_t loglen)
{
	struct as *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	build(a, mac, local_fd, xsk_fd, miss_action);
	int r = resolve(a);
	if (r == 0) {
		LIBBPF_OPTS(bpf_prog_load_opts, o);
		if (log && loglen) {
			log[0] = '\0';
			o.log_buf = log;
			o.log_size = (uint32_t)loglen;
			o.log_level = 1;
		}
		r = bpf_prog_load(BPF_PROG_TYPE_XDP, "tandem_xdp", "Dual BSD/GPL",
				  a->in, a->n, &o);
	}
	free(a);
	return r;
}

int xdp_local_map_create(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "tandem_local", 16, 1,
				XDP_LOCAL_MAX, NULL);
	return fd < 0 ? -errno : fd;
}

int xdp_xsk_map_create(unsigned queues)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "tandem_xsks", 4, 4,
				queues ? queues : 1, NULL);
	return fd < 0 ? -errno : fd;
}

static bool in_set(const uint8_t *k, const uint8_t (*addrs)[16], unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (memcmp(k, addrs[i], 16) == 0)
			return true;
	return false;
}

int xdp_local_sync(int local_fd, const uint8_t (*addrs)[16], unsigned n)
{
	/* Add first, then remove what is gone: an address that stays is
	 * never missing from the map, not even for a moment. */
	uint8_t one = 1;
	int rc = 0;
	for (unsigned i = 0; i < n; i++)
		if (bpf_map_update_elem(local_fd, addrs[i], &one, BPF_ANY) < 0)
			rc = -errno;
	uint8_t key[16], next[16], gone[64][16];
	unsigned ngone;
	do {
		ngone = 0;
		const void *k = NULL;
		while (ngone < 64 && bpf_map_get_next_key(local_fd, k, next) == 0) {
			memcpy(key, next, 16);
			k = key;
			if (!in_set(key, addrs, n))
				memcpy(gone[ngone++], key, 16);
		}
		for (unsigned i = 0; i < ngone; i++)
			if (bpf_map_delete_elem(local_fd, gone[i]) < 0 &&
			    errno != ENOENT)
				rc = -errno;
	} while (ngone == 64 && rc == 0);
	return rc;
}
