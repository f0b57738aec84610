/*
 * line.h - splits a byte stream into protocol lines with a length cap.
 *
 * The reader owns one buffer of (largest cap + 2) bytes, allocated once; the
 * socket reads straight into its free space (line_space/line_commit) and
 * line_next() hands out complete lines. A line is its bytes up to LF, a CR
 * right before the LF dropped. The cap counts the line's bytes without the
 * terminator: a line of exactly `max` bytes is accepted, one byte more is
 * LINE_TOO_LONG, reported as soon as it is certain (no need to wait for the
 * LF), and the rest of that line is then discarded up to the next LF.
 *
 * LINE_BINARY: a byte 0x00-0x08, 0x0a-0x1f (but TAB, and CR before LF),
 * 0x7f, or invalid UTF-8. The connection is expected to close after it.
 *
 * Must never: grow its buffer, hold more than one line's worth of data
 * beyond what the caller has not consumed, or return a line longer than max.
 */
#ifndef TANDEM_MGMT_LINE_H
#define TANDEM_MGMT_LINE_H

#include <stdbool.h>
#include <stddef.h>

enum line_ev {
	LINE_NONE = 0, /* need more bytes */
	LINE_OK,       /* *ret_line / *ret_len: one line, NUL-terminated */
	LINE_TOO_LONG, /* longer than max; its rest will be skipped */
	LINE_BINARY,   /* forbidden byte or bad UTF-8 */
};

struct line_reader {
	char *buf;
	size_t size;    /* allocated: max_cap + 2 */
	size_t start;   /* first unconsumed byte */
	size_t end;     /* one past the last received byte */
	size_t scanned; /* bytes after start already checked (no LF in them) */
	size_t max;     /* current cap, <= size - 2 */
	bool discard;   /* skipping the rest of an overlong line */
};

/* max_cap: the largest cap the reader will ever be set to. */
int line_reader_init(struct line_reader *lr, size_t max_cap, size_t max);
void line_reader_free(struct line_reader *lr); /* accepts NULL */
/* Changes the cap for the following lines (<= max_cap). */
void line_set_max(struct line_reader *lr, size_t max);

/* Free space to read into (may be 0 when unconsumed data fills it). */
void line_space(struct line_reader *lr, char **ret, size_t *ret_len);
void line_commit(struct line_reader *lr, size_t n);
/* Bytes received and not yet returned as lines. */
size_t line_pending(const struct line_reader *lr);

/* The next event; the returned line stays valid until the next call. */
enum line_ev line_next(struct line_reader *lr, const char **ret_line,
		       size_t *ret_len);

/* Checks a complete line (no terminator) like line_next() does. */
bool line_is_text(const char *s, size_t n);

#endif
