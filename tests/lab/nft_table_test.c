/*
 * nft_table_test.c - cmocka tests of node/nft_table.c against the real
 * kernel: install with one and two queues, replace a stale table, leave a
 * user's table alone, remove (twice), refuse bad options.
 *
 * Root only, and only inside a scratch network namespace: run it through
 * tests/lab/nft_table_test.sh, which creates and deletes `tdm-nfttest`.
 * Must never: run in the initial network namespace (it refuses: the tests
 * create and delete tables named "tandem" and "keepme"), or leave either
 * table behind in its namespace.
 *
 * The ruleset is read back with the nft(8) command, an observer independent
 * of libnftnl's own encoding. nft prints the xt compat target as
 * `queue num A[-B] [bypass]`, the native expression the same way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nft_table.h"

#define TABLE "tandem"

/* Runs cmd through the shell; stdout (and stderr) into out, NUL-ended.
 * Returns the exit status, or -1. */
static int run(const char *cmd, char *out, size_t outlen)
{
	char line[512];
	size_t used = 0;
	FILE *f;
	int st;

	if (out && outlen)
		out[0] = '\0';
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);

		if (out && used + l < outlen) {
			memcpy(out + used, line, l + 1);
			used += l;
		}
	}
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `nft list table inet NAME` into out; exit status of nft. */
static int nft_list(const char *name, char *out, size_t outlen)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "nft list table inet %s 2>/dev/null", name);
	return run(cmd, out, outlen);
}

static bool table_exists(const char *name)
{
	bool e = false;

	assert_int_equal(nft_table_exists(name, &e), 0);
	return e;
}

static void install_ok(const struct nft_table_opts *o)
{
	char err[256] = "";
	int r = nft_table_install(o, err, sizeof(err));

	if (r != 0)
		print_error("nft_table_install: %d %s\n", r, err);
	assert_int_equal(r, 0);
	assert_string_equal(err, ""); /* untouched on success */
}

/* The user's table must survive everything the tests do. */
static void assert_keepme_intact(void)
{
	char out[65536];

	assert_int_equal(nft_list("keepme", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "chain userchain"));
	assert_non_null(strstr(out, "counter"));
}

/* True when this process runs in a namespace made by `ip netns add tdm-...`
 * (its nsfs inode is bind-mounted under /run/netns). A positive check:
 * /proc/1/ns/net may be unreadable, so "differs from init" cannot be told. */
static bool in_tdm_netns(void)
{
	struct stat self, st;
	struct dirent *d;
	bool found = false;
	DIR *dir;

	if (stat("/proc/self/ns/net", &self) < 0)
		return false;
	dir = opendir("/run/netns");
	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		char path[300];

		if (strncmp(d->d_name, "tdm-", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "/run/netns/%s", d->d_name);
		found = stat(path, &st) == 0 && st.st_ino == self.st_ino && st.st_dev == self.st_dev;
	}
	closedir(dir);
	return found;
}

static int group_setup(void **state)
{
	(void)state;
	run("nft delete table inet " TABLE " 2>/dev/null", NULL, 0);
	run("nft delete table inet keepme 2>/dev/null", NULL, 0);
	if (run("nft add table inet keepme && "
		"nft add chain inet keepme userchain '{ type filter hook input priority 10; policy accept; }' && "
		"nft add rule inet keepme userchain counter",
		NULL, 0) != 0) {
		fprintf(stderr, "cannot create table inet keepme\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	run("nft delete table inet " TABLE " 2>/dev/null", NULL, 0);
	run("nft delete table inet keepme 2>/dev/null", NULL, 0);
	return 0;
}

/* Each test starts without our table. */
static int test_setup(void **state)
{
	(void)state;
	return nft_table_remove(TABLE, NULL, 0) == 0 ? 0 : -1;
}

static void install_one_queue_bypass_lists_queue_0_bypass(void **state)
{
	struct nft_table_opts o = { .table = TABLE, .queue_first = 0, .queue_count = 1,
				    .bypass = true };
	char out[65536];

	(void)state;
	assert_false(table_exists(TABLE));
	install_ok(&o);
	assert_true(table_exists(TABLE));
	assert_int_equal(nft_list(TABLE, out, sizeof(out)), 0);
	printf("%s", out);
	assert_non_null(strstr(out, "chain forward"));
	assert_non_null(strstr(out, "type filter hook forward priority filter; policy accept;"));
	assert_non_null(strstr(out, "queue num 0 bypass"));
	assert_keepme_intact();
}

static void install_two_queues_steers_by_address_bits_without_bypass(void **state)
{
	struct nft_table_opts o = { .table = TABLE, .queue_first = 0, .queue_count = 2 };
	char out[65536];

	(void)state;
	install_ok(&o);
	assert_int_equal(nft_list(TABLE, out, sizeof(out)), 0);
	printf("%s", out);
	/* steering rules to each queue, and the catch-all */
	assert_non_null(strstr(out, "queue num 0"));
	assert_non_null(strstr(out, "queue num 1"));
	assert_null(strstr(out, "bypass"));
	assert_null(strstr(out, "fanout")); /* never CPU fanout */
	assert_null(strstr(out, "0-1"));    /* never kernel hash balancing */
	assert_keepme_intact();
}

static void install_queue_range_not_at_zero(void **state)
{
	struct nft_table_opts o = { .table = TABLE, .queue_first = 100, .queue_count = 4, .bypass = true };
	char out[65536];

	(void)state;
	install_ok(&o);
	assert_int_equal(nft_list(TABLE, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "queue num 100 bypass"));
	assert_non_null(strstr(out, "queue num 103 bypass"));
}

static void install_with_priority_shows_it(void **state)
{
	struct nft_table_opts o = { .table = TABLE, .queue_count = 1, .priority = 5 };
	char out[65536];

	(void)state;
	install_ok(&o);
	assert_int_equal(nft_list(TABLE, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "priority filter + 5;"));
}

/* A leftover table (after a crash, or someone's edits) is replaced as a
 * whole: its extra chain, set and rules are gone, ours is there once. */
static void install_replaces_stale_table(void **state)
{
	struct nft_table_opts o = { .table = TABLE, .queue_count = 1, .bypass = true };
	char out[65536];

	(void)state;
	assert_int_equal(run("nft add table inet " TABLE " && "
			     "nft add chain inet " TABLE " stale && "
			     "nft add set inet " TABLE " staleset '{ type ipv4_addr; }' && "
			     "nft add chain inet " TABLE
			     " forward '{ type filter hook forward priority 0; policy drop; }' && "
			     "nft add rule inet " TABLE " forward counter drop",
			     NULL, 0), 0);
	install_ok(&o);
	assert_int_equal(nft_list(TABLE, out, sizeof(out)), 0);
	printf("%s", out);
	assert_null(strstr(out, "stale"));
	assert_null(strstr(out, "drop"));
	assert_null(strstr(out, "counter"));
	assert_non_null(strstr(out, "queue num 0 bypass"));
	assert_keepme_intact();
}

/* Installing over our own table (restart) leaves exactly one rule. */
static void install_twice_leaves_one_rule(void **state)
{
	struct nft_table_opts o1 = { .table = TABLE, .queue_count = 1, .bypass = true };
	struct nft_table_opts o2 = { .table = TABLE, .queue_count = 2 };
	char out[65536];
	const char *p;

	(void)state;
	install_ok(&o1);
	install_ok(&o2);
	assert_int_equal(nft_list(TABLE, out, sizeof(out)), 0);
	/* 2 families x 2 queues x 2 source bits steering rules + catch-all,
	 * and nothing of the first install left */
	int rules = 0;
	for (p = strstr(out, "queue num"); p; p = strstr(p + 1, "queue num"))
		rules++;
	assert_int_equal(rules, 9);
	assert_null(strstr(out, "bypass"));
}

static void remove_deletes_only_our_table(void **state)
{
	struct nft_table_opts o = { .table = TABLE, .queue_count = 1 };
	char err[256] = "";

	(void)state;
	install_ok(&o);
	assert_true(table_exists(TABLE));
	assert_int_equal(nft_table_remove(TABLE, err, sizeof(err)), 0);
	assert_false(table_exists(TABLE));
	assert_int_not_equal(nft_list(TABLE, NULL, 0), 0);
	assert_true(table_exists("keepme"));
	assert_keepme_intact();
}

static void remove_absent_table_succeeds(void **state)
{
	(void)state;
	assert_false(table_exists(TABLE));
	assert_int_equal(nft_table_remove(TABLE, NULL, 0), 0);
	assert_int_equal(nft_table_remove(TABLE, NULL, 0), 0);
	assert_false(table_exists(TABLE));
}

static void bad_options_are_refused_and_change_nothing(void **state)
{
	char longname[300];
	char err[256];
	const struct nft_table_opts bad[] = {
		{ .table = TABLE, .queue_count = 0 },
		{ .table = TABLE, .queue_count = 3 },            /* not a power of two */
		{ .table = TABLE, .queue_count = 16 },           /* more than 8 */
		{ .table = TABLE, .queue_first = 65535, .queue_count = 2 },
		{ .table = TABLE, .queue_first = 65536, .queue_count = 1 },
		{ .table = TABLE, .queue_count = 65536 },
		{ .table = "", .queue_count = 1 },
		{ .table = NULL, .queue_count = 1 },
		{ .table = longname, .queue_count = 1 },
	};
	size_t i;

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(nft_table_install(&bad[i], err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(nft_table_install(NULL, NULL, 0), -EINVAL);
	assert_int_equal(nft_table_remove("", NULL, 0), -EINVAL);
	assert_int_equal(nft_table_remove(NULL, NULL, 0), -EINVAL);
	assert_false(table_exists(TABLE));
	assert_keepme_intact();
}

static void exists_checks_arguments_and_leaves_ret_on_error(void **state)
{
	bool e = true;

	(void)state;
	assert_int_equal(nft_table_exists(TABLE, NULL), -EINVAL);
	assert_int_equal(nft_table_exists("", &e), -EINVAL);
	assert_true(e);
	assert_int_equal(nft_table_exists(TABLE, &e), 0);
	assert_false(e);
}

/* Without CAP_NET_ADMIN the kernel refuses the whole batch at its first
 * message: -EPERM, the step named, no wait for acks that never come. */
static void install_without_cap_net_admin_fails_eperm(void **state)
{
	int fds[2], st;
	char msg[256] = "";
	ssize_t n;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct nft_table_opts o = { .table = TABLE, .queue_count = 1 };
		char err[200] = "";
		bool e = true;
		int r1, r2, r3;

		close(fds[0]);
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		r1 = nft_table_install(&o, err, sizeof(err));
		r2 = nft_table_remove(TABLE, NULL, 0);
		r3 = nft_table_exists(TABLE, &e); /* nfnetlink wants it even to read */
		if (write(fds[1], err, strlen(err)) < 0)
			_exit(3);
		_exit(r1 == -EPERM && r2 == -EPERM && r3 == -EPERM && e ? 0 : 1);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	assert_true(n > 0);
	msg[n] = '\0';
	printf("unprivileged install: %s\n", msg);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(strstr(msg, "batch begin"));
	assert_false(table_exists(TABLE));
}

/* A small error buffer is truncated, never overrun (ASan watches). */
static void error_message_fits_small_buffer(void **state)
{
	struct nft_table_opts o = { .table = TABLE, .queue_count = 0 };
	char err[8];

	(void)state;
	memset(err, 'z', sizeof(err));
	assert_int_equal(nft_table_install(&o, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(install_one_queue_bypass_lists_queue_0_bypass, test_setup),
		cmocka_unit_test_setup(install_two_queues_steers_by_address_bits_without_bypass, test_setup),
		cmocka_unit_test_setup(install_queue_range_not_at_zero, test_setup),
		cmocka_unit_test_setup(install_with_priority_shows_it, test_setup),
		cmocka_unit_test_setup(install_replaces_stale_table, test_setup),
		cmocka_unit_test_setup(install_twice_leaves_one_rule, test_setup),
		cmocka_unit_test_setup(remove_deletes_only_our_table, test_setup),
		cmocka_unit_test_setup(remove_absent_table_succeeds, test_setup),
		cmocka_unit_test_setup(bad_options_are_refused_and_change_nothing, test_setup),
		cmocka_unit_test_setup(exists_checks_arguments_and_leaves_ret_on_error, test_setup),
		cmocka_unit_test_setup(install_without_cap_net_admin_fails_eperm, test_setup),
		cmocka_unit_test_setup(error_message_fits_small_buffer, test_setup),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "nft_table_test: needs root; skipped\n");
		return 77;
	}
	if (!in_tdm_netns() && !getenv("TDM_NFT_TEST_ANY_NETNS")) {
		fprintf(stderr, "nft_table_test: runs only inside a tdm-* network namespace "
				"(use tests/lab/nft_table_test.sh); skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
