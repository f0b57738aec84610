/*
 * test_mgmt_conf.c - conf/mgmt.conf loads; defaults; one test per kind of
 * error, each checking the "FILE:LINE: SETTING:" prefix and that nothing
 * was returned.
 *
 * Must never: depend on the working directory (paths come from SRCDIR).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "mgmt_conf.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

#define USER1 "users = ( { name = \"admin\"; token = \"00112233445566778899aabbccddeeff\"; role = \"admin\"; } );\n"

static struct mgmt_conf sentinel;

static void test_example_config_loads(void **state)
{
	struct mgmt_conf *c = NULL;
	char err[512] = "";

	(void)state;
	int r = mgmt_conf_load_file(SRCDIR "/conf/mgmt.conf", &c, err, sizeof(err));
	if (r)
		fail_msg("%s", err);
	assert_string_equal(c->name, "fw1");
	assert_string_equal(c->listen_addr, "127.0.0.1");
	assert_int_equal(c->port, 7070);
	assert_string_equal(c->node_socket, "/run/tandem/fw1/node.sock");
	assert_string_equal(c->syncd_socket, "");
	assert_int_equal(c->n_users, 2);
	assert_int_equal(c->users[0].role, ROLE_ADMIN);
	assert_int_equal(c->users[0].token_len, 32);
	assert_int_equal(c->users[1].role, ROLE_READ_ONLY);
	assert_int_equal(c->users[1].token_len, 16);
	assert_non_null(mgmt_conf_user(c, "noc"));
	assert_null(mgmt_conf_user(c, "nobody"));
	mgmt_conf_free(c);
}

static void test_defaults(void **state)
{
	struct mgmt_conf *c = NULL;
	char err[512];

	(void)state;
	assert_int_equal(mgmt_conf_load_string(USER1, "t", &c, err, sizeof(err)), 0);
	assert_string_equal(c->listen_addr, "127.0.0.1"); /* loopback by default */
	assert_int_equal(c->port, 7070);
	assert_false(c->allow_plain_auth);
	assert_int_equal(c->idle_timeout_ms, 300000);
	assert_int_equal(c->max_clients, 32);
	assert_int_equal(c->max_output_buffer, 1 << 20);
	assert_int_equal(c->max_config_size, 4 << 20);
	assert_int_equal(c->ctl_timeout_ms, 10000);
	assert_int_equal(c->login_max, 5);
	assert_int_equal(c->login_window_ms, 60000);
	assert_int_equal(c->login_block_ms, 60000);
	mgmt_conf_free(c);
	mgmt_conf_free(NULL);
}

static void test_every_setting(void **state)
{
	struct mgmt_conf *c = NULL;
	char err[512];

	(void)state;
	int r = mgmt_conf_load_string(
		"name = \"fw2\";\n"
		"listen = { address = \"::1\"; port = 1; };\n"
		"node_socket = \"/tmp/n.sock\"; syncd_socket = \"/tmp/s.sock\";\n"
		"allow_plain_auth = true; idle_timeout = 1; max_clients = 1024;\n"
		"max_output_buffer = 262144; max_config_size = 1024; ctl_timeout = 600;\n"
		"login_failures = { max = 1; window = 86400; block = 1; };\n" USER1,
		"t", &c, err, sizeof(err));
	if (r)
		fail_msg("%s", err);
	assert_string_equal(c->listen_addr, "::1");
	assert_int_equal(c->port, 1);
	assert_string_equal(c->syncd_socket, "/tmp/s.sock");
	assert_true(c->allow_plain_auth);
	assert_int_equal(c->idle_timeout_ms, 1000);
	assert_int_equal(c->max_clients, 1024);
	assert_int_equal(c->ctl_timeout_ms, 600000);
	assert_int_equal(c->login_max, 1);
	assert_int_equal(c->login_block_ms, 1000);
	mgmt_conf_free(c);
}

static void refused(const char *text, const char *want)
{
	struct mgmt_conf *c = &sentinel;
	char err[512] = "";

	if (mgmt_conf_load_string(text, "m.conf", &c, err, sizeof(err)) == 0)
		fail_msg("accepted: %s", text);
	assert_ptr_equal(c, &sentinel);
	if (!strstr(err, want))
		fail_msg("message '%s' lacks '%s'", err, want);
}

static void test_error_unknown_setting(void **state)
{
	(void)state;
	refused("idle_timeot = 3;\n" USER1, "m.conf:1: idle_timeot: unknown setting");
	refused(USER1 "listen = { adress = \"1.2.3.4\"; };\n", "m.conf:2: listen.adress: unknown setting");
}

static void test_error_out_of_range(void **state)
{
	(void)state;
	refused(USER1 "listen = { port = 70000; };\n", "m.conf:2: listen.port: 70000 out of range");
	refused(USER1 "idle_timeout = 0;\n", "m.conf:2: idle_timeout:");
	refused(USER1 "max_output_buffer = 1000;\n", "max_output_buffer:");
	refused(USER1 "max_clients = 0;\n", "max_clients:");
}

static void test_error_wrong_type(void **state)
{
	(void)state;
	refused(USER1 "allow_plain_auth = 1;\n", "m.conf:2: allow_plain_auth: must be true or false");
	refused(USER1 "max_clients = \"8\";\n", "max_clients: must be an integer");
	refused(USER1 "name = 3;\n", "name: must be a string");
}

static void test_error_users(void **state)
{
	(void)state;
	refused("name = \"x\";\n", "users: required");
	refused("users = ( { name = \"a\"; token = \"0011\"; role = \"admin\"; } );\n",
		"users.[0].token: must be hex of 16..64 bytes");
	refused("users = ( { name = \"a\"; token = \"zz112233445566778899aabbccddeeff\"; } );\n",
		"users.[0].token: must be hex");
	refused("users = ( { name = \"a\"; token = \"00112233445566778899aabbccddeeff\"; role = \"root\"; } );\n",
		"users.[0].role: unknown role 'root'");
	refused("users = ( { name = \"a b\"; token = \"00112233445566778899aabbccddeeff\"; } );\n",
		"users.[0].name: only");
	refused("users = ( { name = \"a\"; token = \"00112233445566778899aabbccddeeff\"; },\n"
		"          { name = \"a\"; token = \"00112233445566778899aabbccddeeff\"; } );\n",
		"m.conf:2: users.[1].name: user 'a' defined twice");
	refused("users = ( { name = \"a\"; token = \"00112233445566778899aabbccddeeff\"; shell = 1; } );\n",
		"users.[0].shell: unknown setting");
}

static void test_error_token_never_in_message(void **state)
{
	struct mgmt_conf *c = &sentinel;
	char err[512] = "";

	(void)state;
	assert_int_not_equal(mgmt_conf_load_string(
		"users = ( { name = \"a\"; token = \"deadbeefdeadbeefdeadbeefdeadbeefXX\"; } );\n",
		"m.conf", &c, err, sizeof(err)), 0);
	assert_null(strstr(err, "deadbeef"));
}

static void test_error_syntax(void **state)
{
	(void)state;
	refused("users = ( {\n", "m.conf:");
}

static void test_error_missing_file(void **state)
{
	struct mgmt_conf *c = &sentinel;
	char err[512] = "";

	(void)state;
	assert_int_not_equal(mgmt_conf_load_file("/nonexistent/mgmt.conf", &c, err,
						 sizeof(err)), 0);
	assert_ptr_equal(c, &sentinel);
	assert_non_null(strstr(err, "/nonexistent/mgmt.conf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_config_loads),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_setting),
		cmocka_unit_test(test_error_unknown_setting),
		cmocka_unit_test(test_error_out_of_range),
		cmocka_unit_test(test_error_wrong_type),
		cmocka_unit_test(test_error_users),
		cmocka_unit_test(test_error_token_never_in_message),
		cmocka_unit_test(test_error_syntax),
		cmocka_unit_test(test_error_missing_file),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
