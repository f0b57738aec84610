/*
 * table.h - aligned text tables for tandemctl's human output.
 *
 * Columns are as wide as their widest cell; a column whose every cell is a
 * number is right-aligned. Cells are copied.
 *
 * Must never: print a control byte from a cell (shown as '?'), so a value
 * from the server cannot move the terminal's cursor.
 */
#ifndef TANDEM_MGMT_TABLE_H
#define TANDEM_MGMT_TABLE_H

#include <stdio.h>

struct table;

int table_new(const char *const *headers, unsigned ncols, struct table **ret);
void table_free(struct table *t); /* accepts NULL */
/* cells[ncols]; NULL cells print as "-". */
int table_add(struct table *t, const char *const *cells);
unsigned table_rows(const struct table *t);
void table_print(const struct table *t, FILE *f);

/* Prints s with control bytes as '?'. */
void table_put_safe(FILE *f, const char *s);

#endif
