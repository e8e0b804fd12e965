/*
 * virt.c against libvirt's test:///default driver: connect, the table fills
 * itself, actions change state and publish events, wrong states answer 409,
 * unknown names 404.  The real-libvirtd version lives in tests/e2e/.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

static struct vmmod_conf conf;

static void
setup(void)
{
	struct host_facts host = {.arch = "x86_64", .accel = "tcg"};

	memset(&conf, 0, sizeof(conf));
	conf.uri = "test:///default";
	conf.storage_pool = "guardian-vms";
	state_init(&conf, &host);
	ck_assert_int_eq(virt_init(&conf), 0);
}

static void
teardown(void)
{
	virt_shutdown();
	state_free();
}

/* Waits (bounded) until the named VM shows the wanted state. */
static bool
wait_state(const char *name, const char *want)
{
	json_object *o;
	bool ok = false;
	int i;

	for (i = 0; i < 500 && !ok; i++) {
		if ((o = state_vm_json(name)) != NULL) {
			ok = strcmp(json_object_get_string(
					json_object_object_get(o, "state")),
				 want) == 0;
			json_object_put(o);
		}
		if (!ok)
			usleep(10000);
	}
	return ok;
}

START_TEST(test_virt_connects_and_lists)
{
	json_object *o;
	int i;

	ck_assert(wait_state("test", "running"));
	/* The table is filled first, then the connection is announced. */
	for (i = 0; i < 500 && !state_connected(); i++)
		usleep(10000);
	ck_assert(state_connected());
	o = state_status_json();
	ck_assert(json_object_get_boolean(
	    json_object_object_get(o, "libvirtd_running")));
	json_object_put(o);
}
END_TEST

START_TEST(test_virt_actions)
{
	struct api_error err;
	json_object *vm = NULL;
	uint64_t seq;
	char *ev;
	bool saw = false;
	ssize_t n;

	ck_assert(wait_state("test", "running"));
	seq = events_last();
	ck_assert_int_eq(virt_action("test", ACT_PAUSE, 0, &vm, &err), 0);
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(vm, "state")),
	    "paused");
	json_object_put(vm);
	while ((n = events_next(&seq, &ev)) > 0) {
		saw = saw || strstr(ev, "\"state\":\"paused\"") != NULL;
		free(ev);
	}
	ck_assert(saw);

	/* pausing twice is a state error, not a libvirt error */
	ck_assert_int_eq(virt_action("test", ACT_PAUSE, 0, NULL, &err), -1);
	ck_assert_int_eq(err.status, 409);
	ck_assert_str_eq(err.code, "wrong_state");
	ck_assert_int_eq(virt_action("test", ACT_RESUME, 0, NULL, &err), 0);
	ck_assert_int_eq(virt_action("test", ACT_FORCE_STOP, 0, NULL, &err), 0);
	ck_assert(wait_state("test", "shutoff"));
	ck_assert_int_eq(virt_action("test", ACT_STOP, 0, NULL, &err), -1);
	ck_assert_int_eq(err.status, 409);
	ck_assert_int_eq(virt_action("test", ACT_START, 0, NULL, &err), 0);
	ck_assert(wait_state("test", "running"));
	ck_assert_int_eq(virt_set_autostart("test", true, &vm, &err), 0);
	ck_assert(
	    json_object_get_boolean(json_object_object_get(vm, "autostart")));
	json_object_put(vm);
}
END_TEST

START_TEST(test_virt_unknown_and_delete)
{
	struct api_error err;
	char uuid[37];

	ck_assert(wait_state("test", "running"));
	ck_assert_int_eq(virt_action("nope", ACT_START, 0, NULL, &err), -1);
	ck_assert_int_eq(err.status, 404);
	/* by UUID too */
	ck_assert_int_eq(state_lookup("test", uuid), 0);
	ck_assert_int_eq(virt_action(uuid, ACT_PAUSE, 0, NULL, &err), 0);
	/* a running (here: paused) VM is not deleted without force */
	ck_assert_int_eq(virt_delete("test", false, false, &err), -1);
	ck_assert_int_eq(err.status, 409);
	ck_assert_int_eq(virt_delete("test", false, true, &err), 0);
	ck_assert_int_eq(state_lookup("test", uuid), -1);
}
END_TEST

Suite *
suite_virt(void)
{
	Suite *s = suite_create("virt");
	TCase *tc = tcase_create("virt");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_virt_connects_and_lists);
	tcase_add_test(tc, test_virt_actions);
	tcase_add_test(tc, test_virt_unknown_and_delete);
	suite_add_tcase(s, tc);
	return s;
}
