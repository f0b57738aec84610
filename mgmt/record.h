/*
 * record.h - the text of the management protocol: data lines
 * `word key=value ...` and the status lines `OK [text]` / `ERR code text`,
 * written into a growable buffer; and the parser tandemctl and the tests use
 * to read data lines back.
 *
 * Quoting: a value is written bare unless it is empty or holds a byte
 * <= 0x20, '"', '=', '\\' or 0x7f; then it is written in double quotes with
 * \" \\ \n \r \t and \xHH (other control bytes) escapes. Bytes >= 0x80 pass
 * as they are (UTF-8). So every data line is one line, and a value can never
 * forge a second field or a status line.
 *
 * Must never: write a raw control byte or LF inside a line, or read past the
 * string it is given. Allocation failures are sticky in rec_buf.err (checked
 * once by the caller), so formatting code needs no error path per field.
 */
#ifndef TANDEM_MGMT_RECORD_H
#define TANDEM_MGMT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rec_buf {
	char *p;     /* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	int err;     /* 0 or -ENOMEM: set by the first failed append */
};

void rec_buf_init(struct rec_buf *b);
void rec_buf_free(struct rec_buf *b); /* frees the text; b may be NULL */
void rec_buf_reset(struct rec_buf *b); /* len = 0, keeps the memory */
/* Hands the text to the caller (to free()); b is empty afterwards. */
char *rec_buf_take(struct rec_buf *b, size_t *ret_len);

void rec_buf_append(struct rec_buf *b, const char *s, size_t n);
void rec_buf_puts(struct rec_buf *b, const char *s);
void rec_buf_printf(struct rec_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One data line: rec_begin(word), fields, rec_end() (adds the LF). */
void rec_begin(struct rec_buf *b, const char *word);
void rec_str(struct rec_buf *b, const char *key, const char *val);
void rec_strn(struct rec_buf *b, const char *key, const char *val, size_t n);
void rec_u64(struct rec_buf *b, const char *key, uint64_t v);
void rec_fmt(struct rec_buf *b, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void rec_end(struct rec_buf *b);

/* Status lines. text may be NULL/empty; control bytes in it become spaces
 * and it is cut at 1000 bytes, so a status is always one short line. */
void rec_ok(struct rec_buf *b, const char *text);
void rec_err(struct rec_buf *b, int code, const char *text);

/* True when the value must be quoted. */
bool rec_needs_quotes(const char *val, size_t n);

/* ---- parsing (tandemctl, tests) ---- */

struct rec_field {
	char *key;
	char *val;
};

/*
 * Parses one data line (without its LF) in place: the word, then
 * key=value fields, quoted values unescaped. At most `max` fields.
 * Returns 0, -EINVAL (not a record: no lowercase word, a field without
 * '=', a bad escape or quote) or -E2BIG (more than max fields).
 */
int rec_parse(char *line, char **ret_word, struct rec_field *fields,
	      unsigned max, unsigned *ret_n);

/* Status line? Returns 1 for OK (ret_text: text or ""), 2 for ERR (ret_code,
 * ret_text), 0 for anything else. Does not modify line. */
int rec_status(const char *line, int *ret_code, const char **ret_text);

#endif
