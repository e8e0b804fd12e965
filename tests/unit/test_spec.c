/*
 * vmmod/spec.c: name rules for new VMs and outside domains, strict UTF-8,
 * MAC rules, JSON defaults and the spec's ownership rules.  Whole-spec
 * fixtures live in test_domxml.c.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "spec.h"
#include "testutil.h"

START_TEST(test_name_new)
{
	static const char *const good[] = {"homeassistant", "omv", "a", "0",
	    "vm-1", "a-", "ubuntu2204",
	    "a23456789012345678901234567890123456789012345678901234567890123"};
	static const char *const bad[] = {"", "-a", "A", "HomeAssistant",
	    "ubuntu22.04", "a_b", "a b", "a/b", "a<b>", "a\"b", "a'b", "a&b",
	    "a;b", "$(x)", "\xc3\xa9t\xc3\xa9", "a\n",
	    "a234567890123456789012345678901234567890123456789012345678901234",
	    "templates", "status", "list", "create", "events"};
	size_t i;

	ck_assert_uint_eq(strlen(good[nitems(good) - 1]), 63);
	for (i = 0; i < nitems(good); i++)
		ck_assert_msg(
		    vm_name_valid_new(good[i]), "%s refused", good[i]);
	for (i = 0; i < nitems(bad); i++)
		ck_assert_msg(
		    !vm_name_valid_new(bad[i]), "%s accepted", bad[i]);
	ck_assert(!vm_name_valid_new(NULL));
	/* Route words are reserved only as whole names. */
	ck_assert(vm_name_valid_new("status2"));
	ck_assert(vm_name_valid_new("my-list"));
}
END_TEST

START_TEST(test_name_ref)
{
	static const char *const good[] = {"ubuntu22.04", "Win 11", "a<b>&\"'c",
	    "status", "$(rm -rf)", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x90\xa7 tux",
	    "a..b"};
	static const char *const bad[] = {"", "a/b", "/", "a\nb", "a\tb",
	    "a\x7f", "a\x1b[31m", "\xc2\x85", "\xc2\x9f"};
	char name[300];
	size_t i;

	for (i = 0; i < nitems(good); i++)
		ck_assert_msg(
		    vm_name_valid_ref(good[i]), "%s refused", good[i]);
	for (i = 0; i < nitems(bad); i++)
		ck_assert_msg(!vm_name_valid_ref(bad[i]), "#%zu accepted", i);
	ck_assert(!vm_name_valid_ref(NULL));
	memset(name, 'x', sizeof(name));
	name[255] = '\0';
	ck_assert(vm_name_valid_ref(name));
	name[255] = 'x';
	name[256] = '\0';
	ck_assert(!vm_name_valid_ref(name));
	/* invalid UTF-8 */
	ck_assert(!vm_name_valid_ref("a\xff"));
	ck_assert(!vm_name_valid_ref("\xc3"));
}
END_TEST

START_TEST(test_utf8)
{
	static const char *const good[] = {"", "abc", "\xc2\xa0", "\xdf\xbf",
	    "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
	    "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"};
	static const char *const bad[] = {"\x80", /* lone continuation */
	    "\xc0\xaf", /* overlong '/' */
	    "\xc1\xbf", /* overlong */
	    "\xe0\x80\xaf", /* overlong '/' */
	    "\xe0\x9f\xbf", /* overlong */
	    "\xed\xa0\x80", /* surrogate U+D800 */
	    "\xed\xbf\xbf", /* surrogate U+DFFF */
	    "\xf0\x8f\xbf\xbf", /* overlong */
	    "\xf4\x90\x80\x80", /* above U+10FFFF */
	    "\xf5\x80\x80\x80", "\xff", "\xfe", "\xe2\x82", /* truncated */
	    "\xf0\x9f\x90", /* truncated */
	    "\xc3\x28", /* bad continuation */
	    "\xe2\x28\xa1", "\xf0\x90\x28\xbc"};
	size_t i;

	for (i = 0; i < nitems(good); i++)
		ck_assert_msg(vm_utf8_valid(good[i], strlen(good[i])),
		    "good #%zu refused", i);
	for (i = 0; i < nitems(bad); i++)
		ck_assert_msg(!vm_utf8_valid(bad[i], strlen(bad[i])),
		    "bad #%zu accepted", i);
	/* The length bounds the scan: a cut sequence is invalid. */
	ck_assert(!vm_utf8_valid("\xc3\xa9", 1));
}
END_TEST

START_TEST(test_mac)
{
	ck_assert(vm_mac_valid("52:54:00:04:18:18"));
	ck_assert(vm_mac_valid("52:54:00:AB:cd:EF"));
	ck_assert(!vm_mac_valid("52:54:00:04:18"));
	ck_assert(!vm_mac_valid("52:54:00:04:18:181"));
	ck_assert(!vm_mac_valid("52-54-00-04-18-18"));
	ck_assert(!vm_mac_valid("52:54:00:g4:18:18"));
	ck_assert(!vm_mac_valid("00:1a:2b:3c:4d:5e"));
	ck_assert(!vm_mac_valid("52:54:01:04:18:18"));
	ck_assert(!vm_mac_valid("52:54:00:4:118:18"));
	ck_assert(!vm_mac_valid(NULL));
}
END_TEST

START_TEST(test_json_defaults)
{
	struct vm_spec *spec;
	char *err = NULL;

	spec = vm_spec_from_json(
	    "{\"name\": \"tiny\", \"arch\": \"x86_64\","
	    " \"memory_mb\": 256, \"vcpus\": 1, \"disk\": \"/v/t.qcow2\","
	    " \"network\": {\"mac\": \"52:54:00:AA:BB:CC\"}}",
	    &err);
	ck_assert_msg(spec != NULL, "%s", err);
	ck_assert_ptr_null(err);
	ck_assert_str_eq(spec->bridge, "br0");
	ck_assert_str_eq(spec->mac, "52:54:00:aa:bb:cc");
	ck_assert_int_eq(spec->virt, VM_VIRT_KVM);
	ck_assert_int_eq(spec->cpu_mode, VM_CPU_DEFAULT);
	ck_assert(!spec->autostart && !spec->vnc && !spec->tpm);
	ck_assert_ptr_null(spec->uuid);
	ck_assert_int_eq(vm_spec_validate(spec, &err), 0);
	vm_spec_free(spec);
}
END_TEST

START_TEST(test_json_errors)
{
	static const struct {
		const char *json;
		const char *err;
	} cases[] = {
	    {"", "JSON: unexpected end of input"},
	    {"{\"name\": \"x\"", "JSON: unexpected end of input"},
	    {"{\"name\": 'x'}", NULL}, /* single quotes: strict */
	    {"{\"name\": \"\xff\"}", NULL}, /* UTF-8 checked */
	    {"{\"name\": 1}", "name: must be a string"},
	    {"{\"name\": null}", "name: must be a string"},
	    {"{\"autostart\": 1}", "autostart: must be true or false"},
	    {"{\"cpu\": []}", "cpu: must be an object"},
	    {"{\"cpu\": {\"mode\": \"fast\"}}",
		"cpu.mode: must be one of "
		"default host-passthrough host-model maximum custom"},
	    {"{\"usb\": {}}", "usb: must be an array"},
	    {"{\"usb\": [1]}", "usb[0]: must be an object"},
	    {"{\"usb\": [{\"vendor\": \"10c4\"}]}",
		"usb[0]: vendor and product required"},
	    {"{\"memory_mb\": -1}",
		"memory_mb: must be between 0 and 9223372036854775807"},
	    {"{\"cputune\": {\"quota\": 0}}", "cputune.quota: must not be 0"},
	    {"{\"kernel\": {\"initrd\": \"/i\"}}", "kernel.path: required"},
	    {"{}", "name: required"},
	};
	struct vm_spec *spec;
	char *err;
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		err = NULL;
		spec = vm_spec_from_json(cases[i].json, &err);
		ck_assert_msg(spec == NULL, "case %zu parsed", i);
		ck_assert_msg(err != NULL, "case %zu: no message", i);
		if (cases[i].err != NULL)
			ck_assert_str_eq(err, cases[i].err);
		free(err);
	}
	/* errp may be NULL. */
	ck_assert_ptr_null(vm_spec_from_json("[]", NULL));
}
END_TEST

START_TEST(test_validate_struct)
{
	struct vm_spec *spec;
	char *err = NULL, *xml;

	vm_spec_free(NULL);
	spec = vm_spec_new();
	ck_assert_int_eq(vm_spec_validate(spec, &err), -1);
	ck_assert_str_eq(err, "name: required");
	spec->name = xstrdup("built-in-code");
	spec->memory_mb = 512;
	spec->vcpus = 1;
	spec->disk = xstrdup("/var/lib/hookprobe/vms/x.qcow2");
	ck_assert_int_eq(vm_spec_validate(spec, &err), -1);
	ck_assert_str_eq(err, "network.mac: required");
	/* A spec built in code is normalised by the builder too. */
	spec->mac = xstrdup("52:54:00:0A:0B:0C");
	ck_assert_int_eq(vm_spec_validate(spec, &err), 0);
	free(err);
	err = NULL;
	xml = domxml_build(spec, &err);
	ck_assert_ptr_nonnull(xml);
	ck_assert_ptr_nonnull(strstr(xml, "52:54:00:0a:0b:0c"));
	ck_assert_ptr_nonnull(strstr(xml, "<source bridge=\"br0\"/>"));
	free(xml);
	spec->hard_limit_mb = 256; /* below memory_mb */
	ck_assert_ptr_null(domxml_build(spec, &err));
	ck_assert_ptr_nonnull(strstr(err, "hard_limit_mb"));
	free(err);
	vm_spec_free(spec);
}
END_TEST

Suite *
suite_spec(void)
{
	Suite *s = suite_create("spec");
	TCase *tc = tcase_create("spec");

	tcase_add_test(tc, test_name_new);
	tcase_add_test(tc, test_name_ref);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_mac);
	tcase_add_test(tc, test_json_defaults);
	tcase_add_test(tc, test_json_errors);
	tcase_add_test(tc, test_validate_struct);
	suite_add_tcase(s, tc);
	return s;
}
