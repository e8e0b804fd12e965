/*
 * vmmod/domxml.c golden tests, libvirt style: one line per case below,
 * tests/data/domxml/NAME.json -> NAME.xml (must build) or NAME.err (must be
 * refused with that message).  REGENERATE=1 rewrites the expectations.
 * Every generated XML is also checked by virt-xml-validate (libvirt's RNG
 * schema) and defined in libvirt's test:///default driver, which parses it
 * with the real domain parser.  A fixture no case uses fails the run.
 */
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common.h"
#include "spec.h"
#include "testutil.h"

extern char **environ;

static const struct domxml_case {
	const char *name;
	bool ok;
} domxml_cases[] = {
    /* builds: NAME.xml */
    {"homeassistant-aarch64", true},
    {"omv-aarch64", true},
    {"ubuntu-x86_64", true},
    {"tiny-x86_64", true},
    {"tiny-aarch64", true},
    {"tcg-uefi-aarch64", true},
    {"hostdev-x86_64", true},
    {"usb-aarch64", true},
    {"tpm-x86_64", true},
    {"tpm-aarch64", true},
    {"hostile-escape", true},
    {"xen-hvm-x86_64", true},
    {"xen-uefi-x86_64", true},
    {"secboot-x86_64", true},
    {"secboot-topsecret-x86_64", true},
    {"tpm-cui-x86_64", true},
    /* refused: NAME.err */
    {"name-markup", false},
    {"name-reserved", false},
    {"name-uppercase", false},
    {"name-leading-dash", false},
    {"name-too-long", false},
    {"title-too-long", false},
    {"title-newline", false},
    {"description-ctrl", false},
    {"mac-not-hex", false},
    {"mac-not-local", false},
    {"mac-short", false},
    {"path-relative", false},
    {"path-ctrl", false},
    {"path-dotdot", false},
    {"path-too-long", false},
    {"nul-in-string", false},
    {"unknown-field", false},
    {"unknown-nested", false},
    {"memory-string", false},
    {"memory-float", false},
    {"memory-too-small", false},
    {"vcpus-too-many", false},
    {"bad-arch", false},
    {"tcg-host-passthrough", false},
    {"aarch64-no-firmware", false},
    {"loader-no-nvram", false},
    {"pci-aarch64", false},
    {"pci-bad-address", false},
    {"usb-bad-id", false},
    {"filter-ip-bad", false},
    {"xen-tpm", false},
    {"xen-aarch64", false},
    {"xen-usb", false},
    {"secboot-topsecret-noenc", false},
    {"secboot-secret-pci", false},
    {"secboot-secret-off", false},
    {"secboot-no-keys", false},
    {"secboot-plain-loader", false},
    {"secboot-bad-class", false},
    {"secboot-bad-secret", false},
    {"tpm-secret-notpm", false},
    {"missing-network", false},
    {"json-trailing", false},
    {"json-syntax", false},
    {"json-not-object", false},
};

/*
 * Runs virt-xml-validate on xml.  1: valid, 0: rejected, -1: could not run
 * (not installed): a failure unless DOMXML_NO_VALIDATE is set.  Its chatter goes to
 * a file that is shown only when it rejects.
 */
static int
domxml_xmllint(const char *name, const char *xml)
{
	char path[] = "/tmp/gvm-domxml-XXXXXX";
	char log[] = "/tmp/gvm-domxml-log-XXXXXX";
	char *argv[] = {"virt-xml-validate", path, "domain", NULL};
	posix_spawn_file_actions_t fa;
	char *out;
	pid_t pid;
	int fd, lfd, rc, status, ret = -1;

	if ((fd = mkstemp(path)) == -1)
		return -1;
	if ((lfd = mkstemp(log)) == -1) {
		close(fd);
		unlink(path);
		return -1;
	}
	if (write(fd, xml, strlen(xml)) != (ssize_t)strlen(xml))
		goto done;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, lfd, 1);
	posix_spawn_file_actions_adddup2(&fa, lfd, 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		goto done;
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		ret = 1;
		goto done;
	}
	ret = 0;
	out = read_file(log, 1 << 20, NULL);
	fprintf(stderr, "%s: virt-xml-validate rejects the XML:\n%s\n", name,
	    out != NULL ? out : "");
	free(out);
done:
	close(fd);
	close(lfd);
	unlink(path);
	unlink(log);
	return ret;
}

static void
domxml_quiet(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/*
 * Defines xml in the test driver (real domain parser and post-parse checks,
 * no hypervisor) and checks that title and description survive the trip.
 */
static bool
domxml_define(virConnectPtr conn, const char *name, const struct vm_spec *spec,
    const char *xml)
{
	virDomainPtr dom;
	char *got;
	bool ok = true;

	dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (dom == NULL) {
		fprintf(stderr, "%s: libvirt test driver refuses: %s\n", name,
		    virGetLastErrorMessage());
		return false;
	}
	got = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_TITLE, NULL, 0);
	if (spec->title != NULL &&
	    (got == NULL || strcmp(got, spec->title) != 0)) {
		fprintf(stderr, "%s: title came back as \"%s\"\n", name,
		    got != NULL ? got : "(none)");
		ok = false;
	}
	free(got);
	got =
	    virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_DESCRIPTION, NULL, 0);
	if (spec->description != NULL &&
	    (got == NULL || strcmp(got, spec->description) != 0)) {
		fprintf(stderr, "%s: description came back as \"%s\"\n", name,
		    got != NULL ? got : "(none)");
		ok = false;
	}
	free(got);
	got = virDomainGetMetadata(
	    dom, VIR_DOMAIN_METADATA_ELEMENT, SPEC_XMLNS, 0);
	if (spec->template_id != NULL &&
	    (got == NULL || strstr(got, spec->template_id) == NULL)) {
		fprintf(stderr, "%s: <metadata> lost the template\n", name);
		ok = false;
	}
	free(got);
	virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_NVRAM);
	virDomainFree(dom);
	return ok;
}

static bool
domxml_run_case(
    const struct domxml_case *c, virConnectPtr conn, int *skipped_lint)
{
	struct vm_spec *spec;
	char *rel, *json, *xml = NULL, *again = NULL, *err = NULL, *msg;
	bool ok = false;
	int lint;

	xasprintf(&rel, "domxml/%s.json", c->name);
	json = test_data_read(rel);
	free(rel);
	if (json == NULL) {
		fprintf(stderr, "%s: missing %s.json\n", c->name, c->name);
		return false;
	}
	if ((spec = vm_spec_from_json(json, &err)) != NULL) {
		xml = domxml_build(spec, &err);
		if (xml != NULL)
			again = domxml_build(spec, NULL);
	}
	if (!c->ok) {
		if (xml != NULL) {
			fprintf(stderr, "%s: built, but should be refused\n",
			    c->name);
			goto done;
		}
		xasprintf(&rel, "domxml/%s.err", c->name);
		xasprintf(&msg, "%s\n", err);
		ok = golden_check(rel, msg);
		free(msg);
		free(rel);
		goto done;
	}
	if (xml == NULL) {
		fprintf(stderr, "%s: refused: %s\n", c->name, err);
		goto done;
	}
	if (again == NULL || strcmp(xml, again) != 0) {
		fprintf(stderr, "%s: output is not deterministic\n", c->name);
		goto done;
	}
	xasprintf(&rel, "domxml/%s.xml", c->name);
	ok = golden_check(rel, xml);
	free(rel);
	lint = domxml_xmllint(c->name, xml);
	if (lint == 0)
		ok = false;
	else if (lint == -1)
		(*skipped_lint)++;
	if (conn != NULL && !domxml_define(conn, c->name, spec, xml))
		ok = false;
done:
	free(json);
	free(xml);
	free(again);
	free(err);
	vm_spec_free(spec);
	return ok;
}

/* NAME.json plus NAME.xml or NAME.err, and nothing else. */
static bool
domxml_used(const char *file)
{
	const char *dot = strrchr(file, '.');
	size_t i, len;

	if (dot == NULL)
		return false;
	len = dot - file;
	for (i = 0; i < nitems(domxml_cases); i++) {
		if (strlen(domxml_cases[i].name) != len ||
		    strncmp(file, domxml_cases[i].name, len) != 0)
			continue;
		if (strcmp(dot, ".json") == 0)
			return true;
		return strcmp(dot, domxml_cases[i].ok ? ".xml" : ".err") == 0;
	}
	return false;
}

/*
 * One test for the whole table: Check forks per test, so the unused-fixture
 * check has to live where the table is walked.
 */
START_TEST(test_domxml_golden)
{
	virConnectPtr conn;
	struct dirent *de;
	DIR *dir;
	char *path;
	size_t i, failed = 0, unused = 0;
	int skipped_lint = 0;

	virSetErrorFunc(NULL, domxml_quiet);
	conn = virConnectOpen("test:///default");
	if (conn == NULL)
		fprintf(stderr, "SKIP domxml: libvirt test driver: %s\n",
		    virGetLastErrorMessage());
	for (i = 0; i < nitems(domxml_cases); i++) {
		if (!domxml_run_case(&domxml_cases[i], conn, &skipped_lint)) {
			fprintf(stderr, "FAIL domxml case %s\n",
			    domxml_cases[i].name);
			failed++;
		}
	}
	if (conn != NULL)
		virConnectClose(conn);
	/* A missing validator is a failure unless explicitly waived. */
	if (skipped_lint > 0 && getenv("DOMXML_NO_VALIDATE") != NULL)
		fprintf(stderr,
		    "SKIP domxml: virt-xml-validate could not run "
		    "(%d cases unchecked, DOMXML_NO_VALIDATE set)\n",
		    skipped_lint);
	else if (skipped_lint > 0) {
		fprintf(stderr,
		    "domxml: virt-xml-validate (libvirt-clients) "
		    "could not run; DOMXML_NO_VALIDATE=1 skips it\n");
		failed++;
	}

	path = test_data_path("domxml");
	dir = opendir(path);
	ck_assert_msg(dir != NULL, "cannot open %s", path);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (!domxml_used(de->d_name)) {
			fprintf(stderr, "%s/%s: not used by any case\n", path,
			    de->d_name);
			unused++;
		}
	}
	closedir(dir);
	free(path);
	ck_assert_msg(failed == 0, "%zu of %zu domxml cases failed", failed,
	    nitems(domxml_cases));
	ck_assert_msg(
	    unused == 0, "%zu unused files in tests/data/domxml", unused);
}
END_TEST

Suite *
suite_domxml(void)
{
	Suite *s = suite_create("domxml");
	TCase *tc = tcase_create("golden");

	/* virt-xml-validate per case; slow under qemu-user. */
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_domxml_golden);
	suite_add_tcase(s, tc);
	return s;
}
