/*
 * table.c - aligned text tables (tandemctl).
 *
 * Must never: write a control byte of a cell to the terminal.
 */
#include "table.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct table {
	unsigned ncols, nrows, cap;
	char **cells;    /* nrows * ncols, row-major; row 0 = headers */
	size_t *width;   /* display width (bytes; UTF-8 continuation bytes skipped) */
	bool *numeric;
};

static size_t disp_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || *s == '/' || *s == '.'))
			return false;
	return true;
}

int table_new(const char *const *headers, unsigned ncols, struct table **ret)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t || !ncols)
		goto fail;
	t->ncols = ncols;
	t->width = calloc(ncols, sizeof(*t->width));
	t->numeric = calloc(ncols, sizeof(*t->numeric));
	if (!t->width || !t->numeric)
		goto fail;
	for (unsigned i = 0; i < ncols; i++)
		t->numeric[i] = true;
	/* The header row is stored like a row but not counted for numeric. */
	if (table_add(t, headers))
		goto fail;
	for (unsigned i = 0; i < ncols; i++)
		t->numeric[i] = true;
	*ret = t;
	return 0;
fail:
	table_free(t);
	return -ENOMEM;
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t->numeric);
	free(t);
}

int table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, (size_t)cap * t->ncols * sizeof(*c));
		if (!c)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	char **row = t->cells + (size_t)t->nrows * t->ncols;
	for (unsigned i = 0; i < t->ncols; i++) {
		const char *v = cells[i] ? cells[i] : "-";
		row[i] = strdup(v);
		if (!row[i]) {
			while (i--)
				free(row[i]);
			return -ENOMEM;
		}
		size_t w = disp_len(v);
		if (w > t->width[i])
			t->width[i] = w;
		if (cells[i] && !is_number(v))
			t->numeric[i] = false;
	}
	t->nrows++;
	return 0;
}

unsigned table_rows(const struct table *t)
{
	return t->nrows ? t->nrows - 1 : 0;
}

void table_put_safe(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, f);
}

void table_print(const struct table *t, FILE *f)
{
	for (unsigned r = 0; r < t->nrows; r++) {
		char **row = t->cells + (size_t)r * t->ncols;
		for (unsigned c = 0; c < t->ncols; c++) {
			size_t pad = t->width[c] - disp_len(row[c]);
			bool last = c + 1 == t->ncols;
			if (t->numeric[c])
				for (size_t k = 0; k < pad; k++)
					fputc(' ', f);
			table_put_safe(f, row[c]);
			if (!last && !t->numeric[c])
				for (size_t k = 0; k < pad; k++)
					fputc(' ', f);
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
}
