/*
 * line.c - bounded line splitting for the management protocol.
 *
 * Invariant: start <= start + scanned <= end <= size, and the bytes
 * [start, start + scanned) hold no LF and no forbidden byte. Each byte is
 * scanned once, so a line costs O(length) however it is split into reads.
 *
 * Must never: write outside buf, or return a line without its terminating
 * NUL (the LF, or the CR before it, is overwritten with one).
 */
#include "line.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int line_reader_init(struct line_reader *lr, size_t max_cap, size_t max)
{
	if (max_cap == 0 || max > max_cap || max_cap > SIZE_MAX / 2)
		return -EINVAL;
	char *buf = malloc(max_cap + 2);
	if (!buf)
		return -ENOMEM;
	memset(lr, 0, sizeof(*lr));
	lr->buf = buf;
	lr->size = max_cap + 2;
	lr->max = max;
	return 0;
}

void line_reader_free(struct line_reader *lr)
{
	if (!lr)
		return;
	free(lr->buf);
	memset(lr, 0, sizeof(*lr));
}

void line_set_max(struct line_reader *lr, size_t max)
{
	if (max > lr->size - 2)
		max = lr->size - 2;
	lr->max = max;
}

void line_space(struct line_reader *lr, char **ret, size_t *ret_len)
{
	if (lr->start > 0) {
		/* Compact: unconsumed bytes move to the front. */
		size_t n = lr->end - lr->start;
		memmove(lr->buf, lr->buf + lr->start, n);
		lr->start = 0;
		lr->end = n;
	}
	*ret = lr->buf + lr->end;
	*ret_len = lr->size - lr->end;
}

void line_commit(struct line_reader *lr, size_t n)
{
	if (n > lr->size - lr->end)
		n = lr->size - lr->end; /* caller bug; never overrun */
	lr->end += n;
}

size_t line_pending(const struct line_reader *lr)
{
	return lr->end - lr->start;
}

/* Length of a valid UTF-8 sequence starting at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2; min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3; min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4; min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	unsigned cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool forbidden(unsigned char ch)
{
	return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

bool line_is_text(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		if (u[i] < 0x80) {
			if (forbidden(u[i]))
				return false;
			i++;
			continue;
		}
		size_t l = utf8_len(u + i, n - i);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

enum line_ev line_next(struct line_reader *lr, const char **ret_line,
		       size_t *ret_len)
{
	for (;;) {
		char *base = lr->buf + lr->start;
		size_t avail = lr->end - lr->start;
		size_t i = lr->scanned;

		/* Look for the LF; every byte before it is checked once. */
		for (; i < avail; i++) {
			unsigned char ch = (unsigned char)base[i];
			if (ch == '\n')
				break;
			if (ch == '\r') {
				if (i + 1 == avail)
					break; /* CR LF may be split over reads */
				if (base[i + 1] == '\n')
					continue;
			}
			if (forbidden(ch) && !lr->discard) {
				lr->start = lr->end; /* nothing more is read */
				lr->scanned = 0;
				return LINE_BINARY;
			}
		}
		lr->scanned = i;

		if (lr->discard) {
			if (i < avail && base[i] == '\n') {
				/* End of the overlong line: resume normal work. */
				lr->start += i + 1;
				lr->scanned = 0;
				lr->discard = false;
				continue;
			}
			/* All but a possibly split CR is dropped. */
			lr->start += i;
			lr->scanned = 0;
			return LINE_NONE;
		}

		if (i < avail && base[i] == '\n') {
			size_t len = i;
			if (len > 0 && base[len - 1] == '\r')
				len--;
			lr->start += i + 1;
			lr->scanned = 0;
			if (len > lr->max)
				return LINE_TOO_LONG;
			base[len] = '\0';
			if (!line_is_text(base, len))
				return LINE_BINARY;
			*ret_line = base;
			*ret_len = len;
			return LINE_OK;
		}

		/*
		 * No LF yet. The line holds at least i bytes (a CR waiting for
		 * its LF at i is not counted): beyond max it is too long,
		 * whatever follows. max + 2 bytes (line, CR, LF) always fit.
		 */
		if (i > lr->max) {
			lr->start += i;
			lr->scanned = 0;
			lr->discard = true;
			return LINE_TOO_LONG;
		}
		return LINE_NONE;
	}
}
