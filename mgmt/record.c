/*
 * record.c - writing and reading the protocol's data and status lines.
 *
 * Must never: emit an unescaped control byte or LF inside a line; grow a
 * buffer by less than doubling (appends stay amortised O(1)).
 */
#include "record.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_TEXT_MAX 1000 /* bytes of text kept in a status line */

void rec_buf_init(struct rec_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void rec_buf_free(struct rec_buf *b)
{
	if (!b)
		return;
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void rec_buf_reset(struct rec_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
	b->err = 0;
}

char *rec_buf_take(struct rec_buf *b, size_t *ret_len)
{
	char *p = b->p;

	*ret_len = b->len;
	memset(b, 0, sizeof(*b));
	return p;
}

/* Room for n more bytes plus the NUL. */
static int reserve(struct rec_buf *b, size_t n)
{
	if (b->err)
		return b->err;
	if (n > SIZE_MAX / 2 - b->len) {
		b->err = -ENOMEM;
		return b->err;
	}
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void rec_buf_append(struct rec_buf *b, const char *s, size_t n)
{
	if (reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void rec_buf_puts(struct rec_buf *b, const char *s)
{
	rec_buf_append(b, s, strlen(s));
}

static void vprintf_buf(struct rec_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	char small[256];

	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->err = b->err ? b->err : -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		rec_buf_append(b, small, (size_t)n);
		return;
	}
	if (reserve(b, (size_t)n))
		return;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void rec_buf_printf(struct rec_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf_buf(b, fmt, ap);
	va_end(ap);
}

void rec_begin(struct rec_buf *b, const char *word)
{
	rec_buf_puts(b, word);
}

void rec_end(struct rec_buf *b)
{
	rec_buf_append(b, "\n", 1);
}

bool rec_needs_quotes(const char *val, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)val[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '"' || ch == '=' ||
		    ch == '\\')
			return true;
	}
	return false;
}

static void put_value(struct rec_buf *b, const char *val, size_t n)
{
	if (!rec_needs_quotes(val, n)) {
		rec_buf_append(b, val, n);
		return;
	}
	/* Worst case 4 bytes per input byte, plus the quotes. */
	if (n > (SIZE_MAX - 2) / 4) {
		b->err = -ENOMEM;
		return;
	}
	if (reserve(b, n * 4 + 2))
		return;
	char *o = b->p + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)val[i];
		switch (ch) {
		case '"':  *o++ = '\\'; *o++ = '"'; break;
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		default:
			if (ch < 0x20 || ch == 0x7f) {
				static const char hex[] = "0123456789abcdef";
				*o++ = '\\';
				*o++ = 'x';
				*o++ = hex[ch >> 4];
				*o++ = hex[ch & 15];
			} else {
				*o++ = (char)ch;
			}
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->p);
	b->p[b->len] = '\0';
}

void rec_strn(struct rec_buf *b, const char *key, const char *val, size_t n)
{
	rec_buf_append(b, " ", 1);
	rec_buf_puts(b, key);
	rec_buf_append(b, "=", 1);
	put_value(b, val ? val : "", val ? n : 0);
}

void rec_str(struct rec_buf *b, const char *key, const char *val)
{
	rec_strn(b, key, val, val ? strlen(val) : 0);
}

void rec_u64(struct rec_buf *b, const char *key, uint64_t v)
{
	rec_buf_printf(b, " %s=%" PRIu64, key, v);
}

void rec_fmt(struct rec_buf *b, const char *key, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(tmp))
		n = sizeof(tmp) - 1; /* formatted values are short by design */
	rec_strn(b, key, tmp, (size_t)n);
}

static void put_status_text(struct rec_buf *b, const char *text)
{
	size_t n = text ? strnlen(text, STATUS_TEXT_MAX) : 0;

	if (!n)
		return;
	rec_buf_append(b, " ", 1);
	if (reserve(b, n))
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];
		b->p[b->len++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	b->p[b->len] = '\0';
}

void rec_ok(struct rec_buf *b, const char *text)
{
	rec_buf_append(b, "OK", 2);
	put_status_text(b, text);
	rec_end(b);
}

void rec_err(struct rec_buf *b, int code, const char *text)
{
	if (code < 400 || code > 599)
		code = 500;
	rec_buf_printf(b, "ERR %d", code);
	put_status_text(b, text && *text ? text : "error");
	rec_end(b);
}

/* ---------------------------------------------------------------- parsing */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Unescapes a quoted value starting after its opening quote at *pp, in
 * place; on return *pp points past the closing quote. */
static int parse_quoted(char **pp, char **ret_val)
{
	char *r = *pp, *w = *pp, *val = *pp;

	for (;;) {
		char ch = *r++;
		if (ch == '\0')
			return -EINVAL; /* no closing quote */
		if (ch == '"')
			break;
		if (ch != '\\') {
			*w++ = ch;
			continue;
		}
		ch = *r++;
		switch (ch) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'x': {
			int h = hexval(r[0]), l = h < 0 ? -1 : hexval(r[1]);
			if (h < 0 || l < 0)
				return -EINVAL;
			*w++ = (char)(h << 4 | l);
			r += 2;
			break;
		}
		default:
			return -EINVAL;
		}
	}
	*w = '\0';
	*pp = r;
	*ret_val = val;
	return 0;
}

int rec_parse(char *line, char **ret_word, struct rec_field *fields,
	      unsigned max, unsigned *ret_n)
{
	char *p = line, *word = line;
	unsigned n = 0;

	if (!islower((unsigned char)*p))
		return -EINVAL;
	while (islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
	       *p == '_' || *p == '-')
		p++;
	if (*p != ' ' && *p != '\0')
		return -EINVAL;
	while (*p == ' ') {
		*p++ = '\0';
		if (*p == '\0' || *p == ' ')
			continue; /* tolerate doubled or trailing spaces */
		char *key = p;
		while (*p && *p != '=' && *p != ' ')
			p++;
		if (*p != '=' || p == key)
			return -EINVAL;
		*p++ = '\0';
		char *val;
		if (*p == '"') {
			p++;
			if (parse_quoted(&p, &val))
				return -EINVAL;
			if (*p != ' ' && *p != '\0')
				return -EINVAL;
		} else {
			val = p;
			while (*p && *p != ' ')
				p++;
		}
		if (n == max)
			return -E2BIG;
		fields[n].key = key;
		fields[n].val = val;
		n++;
	}
	if (*p != '\0')
		return -EINVAL;
	*ret_word = word;
	*ret_n = n;
	return 0;
}

int rec_status(const char *line, int *ret_code, const char **ret_text)
{
	if (strncmp(line, "OK", 2) == 0 && (line[2] == '\0' || line[2] == ' ')) {
		*ret_text = line[2] ? line + 3 : line + 2;
		return 1;
	}
	if (strncmp(line, "ERR ", 4) == 0 && isdigit((unsigned char)line[4]) &&
	    isdigit((unsigned char)line[5]) && isdigit((unsigned char)line[6]) &&
	    (line[7] == ' ' || line[7] == '\0')) {
		*ret_code = (line[4] - '0') * 100 + (line[5] - '0') * 10 +
			    (line[6] - '0');
		*ret_text = line[7] ? line + 8 : line + 7;
		return 2;
	}
	return 0;
}
