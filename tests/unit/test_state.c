/*
 * domparse.c (facts from domain XML), events.c (the SSE ring) and state.c
 * (the domain table and its JSON).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

START_TEST(test_domparse_outside)
{
	struct vm_facts f;
	char *xml = test_data_read("domparse/outside.xml"), **disks;

	ck_assert_ptr_nonnull(xml);
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(domparse_facts(xml, &f), 0);
	ck_assert_str_eq(f.name, "ubuntu22.04");
	ck_assert_str_eq(f.title, "Bob's \"VM\" <b>&");
	ck_assert_str_eq(f.mac, "52:54:00:ab:cd:ef");
	ck_assert_ptr_null(f.template_id);
	ck_assert_uint_eq(f.memory_mb, 2048);
	ck_assert_uint_eq(f.vcpus, 2);
	ck_assert(f.has_vnc);
	ck_assert(f.has_serial);
	vm_facts_clear(&f);

	/* Only file-backed disks; a block device is never a pool volume. */
	disks = domparse_disks(xml);
	ck_assert_str_eq(disks[0], "/var/lib/libvirt/images/ubuntu.qcow2");
	ck_assert_str_eq(disks[1], "/var/lib/libvirt/images/seed.iso");
	ck_assert_ptr_null(disks[2]);
	strv_free(disks);
	free(xml);
}
END_TEST

START_TEST(test_domparse_ours)
{
	struct vm_facts f;
	char *xml = test_data_read("domparse/ours.xml");

	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(domparse_facts(xml, &f), 0);
	ck_assert_str_eq(f.template_id, "homeassistant");
	ck_assert_str_eq(f.classification, "");
	ck_assert(!f.tpm && !f.secure_boot && !f.disk_encrypted);
	ck_assert_uint_eq(f.memory_mb, 2048);
	ck_assert(!f.has_vnc);
	ck_assert(!f.has_serial);
	ck_assert_ptr_null(f.mac);
	vm_facts_clear(&f);
	free(xml);
}
END_TEST

START_TEST(test_domparse_garbage)
{
	struct vm_facts f;
	char **d;

	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(domparse_facts("<notadomain/>", &f), -1);
	ck_assert_int_eq(domparse_facts("<<<", &f), -1);
	vm_facts_clear(&f);
	d = domparse_disks("junk");
	ck_assert_ptr_null(d[0]);
	strv_free(d);
}
END_TEST

static int wakes;

static void
count_wake(void *arg)
{
	(*(int *)arg)++;
}

START_TEST(test_events_ring)
{
	json_object *o = json_object_new_object();
	uint64_t seq = events_last(), start = seq;
	char *out;
	int i, id;
	ssize_t n;

	wakes = 0;
	id = events_watch(count_wake, &wakes);
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(events_next(&seq, &out), 0);
	json_object_object_add(o, "name", json_object_new_string("a\"b\n"));
	events_publish("vm", o);
	ck_assert_int_eq(wakes, 1);
	n = events_next(&seq, &out);
	ck_assert_int_gt(n, 0);
	/* The data line is one line of JSON: a newline in a value is escaped. */
	ck_assert_str_eq(out, "event: vm\ndata: {\"name\":\"a\\\"b\\n\"}\n\n");
	free(out);
	ck_assert_uint_eq(seq, start + 1);
	events_unwatch(id);
	events_publish("vm", o);
	ck_assert_int_eq(wakes, 1);

	/* A reader that fell behind the ring learns it and skips ahead. */
	for (i = 0; i < 300; i++)
		events_publish("vm", o);
	ck_assert_int_eq(events_next(&seq, &out), -1);
	ck_assert_uint_eq(seq, events_last());
	ck_assert_int_eq(events_next(&seq, &out), 0);
	json_object_put(o);
}
END_TEST

static void
facts(struct vm_facts *f, const char *uuid, const char *name, enum vm_state st)
{
	memset(f, 0, sizeof(*f));
	strcpy(f->uuid, uuid);
	f->name = xstrdup(name);
	f->state = st;
	f->vcpus = 1;
	f->memory_mb = 512;
	f->mac = xstrdup("52:54:00:04:18:18");
}

START_TEST(test_state_table)
{
	struct vmmod_conf conf;
	struct host_facts host = {.arch = "x86_64",
	    .accel = "tcg",
	    .ram_total_mb = 8192,
	    .ram_budget_mb = 6144};
	struct vm_facts f[2];
	json_object *o, *v;
	char uuid[37], *resv;
	uint64_t seq;
	unsigned counts[VS_STARTING + 1];

	memset(&conf, 0, sizeof(conf));
	resv = test_data_path("leases/resv");
	conf.lease_file = test_data_path("leases/none");
	conf.reservations_dir = resv;
	state_init(&conf, &host);
	facts(
	    &f[0], "aaaaaaaa-0000-0000-0000-000000000001", "zeta", VS_SHUTOFF);
	facts(
	    &f[1], "aaaaaaaa-0000-0000-0000-000000000002", "alpha", VS_RUNNING);
	seq = events_last();
	state_replace_all(f, 2);
	ck_assert_uint_eq(events_last(), seq + 2);
	/* The same facts again change nothing and publish nothing. */
	state_put(&f[0]);
	ck_assert_uint_eq(events_last(), seq + 2);

	o = state_vms_json();
	v = json_object_array_get_idx(json_object_object_get(o, "vms"), 0);
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(v, "name")), "alpha");
	json_object_put(o);

	ck_assert_int_eq(state_lookup("zeta", uuid), 0);
	ck_assert_str_eq(uuid, f[0].uuid);
	ck_assert_int_eq(
	    state_lookup("AAAAAAAA-0000-0000-0000-000000000002", uuid), 0);
	ck_assert_str_eq(uuid, f[1].uuid);
	ck_assert_int_eq(state_lookup("nope", uuid), -1);

	state_counts(counts);
	ck_assert_uint_eq(counts[VS_RUNNING], 1);
	ck_assert_uint_eq(counts[VS_SHUTOFF], 1);

	o = state_host_json();
	ck_assert_int_eq(
	    json_object_get_int(json_object_object_get(o, "ram_committed_mb")),
	    512);
	json_object_put(o);

	/* The serialized list is cached, and rebuilt when the table changes. */
	{
		char *t1 = state_vms_text(NULL), *t2 = state_vms_text(NULL);

		ck_assert_str_eq(t1, t2);
		ck_assert_ptr_nonnull(strstr(t1, "\"state\":\"shutoff\""));
		free(t2);
		seq = events_last();
		state_set_state(f[0].uuid, VS_RUNNING);
		ck_assert_uint_eq(events_last(), seq + 1);
		state_set_state(
		    f[0].uuid, VS_RUNNING); /* no change, no event */
		ck_assert_uint_eq(events_last(), seq + 1);
		t2 = state_vms_text(NULL);
		ck_assert_str_ne(t1, t2);
		ck_assert_ptr_null(strstr(t2, "\"state\":\"shutoff\""));
		free(t1);
		free(t2);
		state_put(&f[0]); /* back to what the facts say */
	}

	/* A refresh that read libvirt before a newer lifecycle event keeps
	 * the event's state (no stale running/shutoff pair is published)
	 * and takes the rest; one read after the event is taken whole. */
	{
		struct vm_facts g;
		uint64_t mark = state_mark();

		state_set_state(f[1].uuid, VS_SHUTOFF); /* the event */
		facts(&g, f[1].uuid, "alpha", VS_RUNNING); /* read before it */
		g.vcpus = 2;
		seq = events_last();
		state_put_since(&g, mark);
		ck_assert_uint_eq(events_last(), seq + 1); /* the vCPUs */
		o = state_vm_json("alpha");
		ck_assert_str_eq(
		    json_object_get_string(json_object_object_get(o, "state")),
		    "shutoff");
		ck_assert_int_eq(
		    json_object_get_int(json_object_object_get(o, "vcpus")), 2);
		json_object_put(o);
		state_put_since(&g, state_mark());
		o = state_vm_json("alpha");
		ck_assert_str_eq(
		    json_object_get_string(json_object_object_get(o, "state")),
		    "running");
		json_object_put(o);
		g.vcpus = 1;
		state_put(&g); /* as it was, for what follows */
		vm_facts_clear(&g);
	}

	/* Resync without "zeta" removes it and says so. */
	state_replace_all(&f[1], 1);
	ck_assert_int_eq(state_lookup("zeta", uuid), -1);
	o = state_vm_json("alpha");
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(o, "state")),
	    "running");
	json_object_put(o);
	vm_facts_clear(&f[0]);
	vm_facts_clear(&f[1]);
	state_free();
	free(conf.lease_file);
	free(resv);
}
END_TEST

START_TEST(test_webprobe)
{
	struct vmmod_conf conf;
	struct host_facts host = {.arch = "x86_64", .accel = "tcg"};
	struct sockaddr_in sin;
	struct vm_facts f;
	socklen_t len = sizeof(sin);
	json_object *o;
	char dir[] = "/tmp/gvm-probe-XXXXXX", *path, line[128];
	bool ready = false;
	int lfd, i;

	/* A listener stands in for the VM's web UI, at 127.0.0.1:port. */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	ck_assert(!webprobe_answers("127.0.0.1", ntohs(sin.sin_port), 500));
	ck_assert(!webprobe_answers("not-an-ip", 80, 500));

	/* The VM's address comes from a dnsmasq reservation file. */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	xasprintf(&path, "%s/web", dir);
	snprintf(line, sizeof(line), "52:54:00:04:18:18,127.0.0.1,web\n");
	ck_assert_int_eq(write_file_atomic(path, line, strlen(line), 0644), 0);
	memset(&conf, 0, sizeof(conf));
	conf.reservations_dir = dir;
	state_init(&conf, &host);
	facts(&f, "bbbbbbbb-0000-0000-0000-000000000001", "web", VS_RUNNING);
	f.web_port = ntohs(sin.sin_port);
	state_replace_all(&f, 1);
	ck_assert_int_eq(webprobe_start(), 0);
	o = state_vm_json("web");
	ck_assert(
	    !json_object_get_boolean(json_object_object_get(o, "web_ready")));
	json_object_put(o);

	/* The web UI starts answering: the next probe notices (a VM start
	 * kicks the probe the same way). */
	ck_assert_int_eq(listen(lfd, 4), 0);
	webprobe_kick();
	for (i = 0; i < 150 && !ready; i++) {
		o = state_vm_json("web");
		ready = json_object_get_boolean(
		    json_object_object_get(o, "web_ready"));
		json_object_put(o);
		if (!ready)
			usleep(100000);
	}
	ck_assert_msg(ready, "web_ready never turned true");
	/* Stopped VMs are not ready any more. */
	f.state = VS_SHUTOFF;
	state_put(&f);
	o = state_vm_json("web");
	ck_assert(
	    !json_object_get_boolean(json_object_object_get(o, "web_ready")));
	json_object_put(o);
	webprobe_stop();
	vm_facts_clear(&f);
	state_free();
	close(lfd);
	unlink(path);
	rmdir(dir);
	free(path);
}
END_TEST

Suite *
suite_state(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_test(tc, test_domparse_outside);
	tcase_add_test(tc, test_domparse_ours);
	tcase_add_test(tc, test_domparse_garbage);
	tcase_add_test(tc, test_events_ring);
	tcase_add_test(tc, test_state_table);
	tcase_add_test(tc, test_webprobe);
	tcase_set_timeout(tc, 30); /* qemu-user on a loaded machine is slow */
	suite_add_tcase(s, tc);
	return s;
}
