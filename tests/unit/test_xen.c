/*
 * vmmod/xen.c: the backend registry (URI and config word), dom0 detection,
 * and the loopback-only VNC connection the console proxy uses for libxl
 * guests.  The Xen domain XML is in the domxml goldens (xen-*).  Nothing
 * here needs a Xen host; starting a real xen guest is not tested: these
 * build machines run no Xen dom0 (/proc/xen is absent), said at run time.
 * Built without Xen (arm64), xen_none.c must refuse xen URIs.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmmod.h"
#include "testutil.h"

static const struct vm_backend *
pick(const char *uri, const char *name)
{
	const struct vm_backend *b = NULL;
	char *why = NULL;

	ck_assert_msg(xen_backend_pick(uri, name, &b, &why) == 0, "%s: %s",
	    uri != NULL ? uri : "-", why);
	return b;
}

static void
pick_fails(const char *uri, const char *name, const char *want)
{
	const struct vm_backend *b = NULL;
	char *why = NULL;

	ck_assert_int_eq(xen_backend_pick(uri, name, &b, &why), -1);
	ck_assert_str_eq(why, want);
	free(why);
}

START_TEST(test_xen_registry)
{
	const struct vm_backend *b;

	b = pick("xen:///system", NULL);
	ck_assert_str_eq(b->name, "xen");
	ck_assert_int_eq(b->virt, VM_VIRT_XEN);
	ck_assert(b->console_stream);
	ck_assert(!b->graphics_fd); /* VNC on loopback, proxied */
	ck_assert_str_eq(pick("xen+ssh://host/system", "xen")->name, "xen");
	b = pick("qemu:///system", NULL);
	ck_assert_str_eq(b->name, "qemu");
	ck_assert_int_eq(b->virt, VM_VIRT_KVM);
	ck_assert(b->graphics_fd);
	ck_assert_str_eq(pick("test:///default", NULL)->name, "qemu");
	ck_assert_str_eq(pick(NULL, NULL)->name, "qemu");
	pick_fails("xen:///system", "qemu",
	    "backend qemu does not match the libvirt URI xen:///system");
	pick_fails(
	    "lxc:///", NULL, "libvirt URI lxc:///: not a qemu or xen driver");
}
END_TEST

START_TEST(test_xen_dom0)
{
	char dir[] = "/tmp/gvm-xen-XXXXXX", *x;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert(!xen_dom0_running(dir));
	xasprintf(&x, "%s/xen", dir);
	ck_assert_int_eq(mkdir(x, 0700), 0);
	ck_assert(xen_dom0_running(dir));
	rmdir(x);
	rmdir(dir);
	free(x);
	if (!xen_dom0_running(NULL))
		fprintf(stderr,
		    "SKIP xen runtime: no Xen dom0 here "
		    "(/proc/xen absent): xen guests are checked "
		    "as XML only (domxml xen-* goldens)\n");
}
END_TEST

static const char live_fmt[] =
    "<domain type='xen'><devices><graphics type='vnc' port='%d' "
    "autoport='yes'><listen type='address' address='%s'/></graphics>"
    "</devices></domain>";

START_TEST(test_xen_vnc_loopback)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	char *xml, *why = NULL, buf[12];
	int l, fd, c;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ne(l = socket(AF_INET, SOCK_STREAM, 0), -1);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);

	xasprintf(&xml, live_fmt, ntohs(sin.sin_port), "127.0.0.1");
	fd = xen_vnc_connect(xml, &why);
	ck_assert_msg(fd >= 0, "%s", why);
	ck_assert_int_ne(c = accept(l, NULL, NULL), -1);
	ck_assert_int_eq(write(c, "RFB 003.008\n", 12), 12);
	ck_assert_int_eq(read(fd, buf, 12), 12);
	ck_assert(memcmp(buf, "RFB 003.008\n", 12) == 0);
	close(c);
	close(fd);
	free(xml);

	/* anything but loopback is refused, not followed */
	xasprintf(&xml, live_fmt, ntohs(sin.sin_port), "0.0.0.0");
	ck_assert_int_eq(xen_vnc_connect(xml, &why), -1);
	ck_assert_str_eq(why,
	    "the VM's VNC does not listen on 127.0.0.1 "
	    "only; refusing to proxy it");
	free(why);
	free(xml);
	/* a defined-but-stopped guest has port -1 */
	xasprintf(&xml, live_fmt, -1, "127.0.0.1");
	ck_assert_int_eq(xen_vnc_connect(xml, &why), -1);
	ck_assert_str_eq(why, "the VM has no VNC port (is it running?)");
	free(why);
	free(xml);
	close(l);
}
END_TEST

START_TEST(test_xen_not_built)
{
	const struct vm_backend *b = NULL;
	char *why = NULL;

	pick_fails("xen:///system", NULL,
	    "the Xen backend is not built on this architecture");
	ck_assert_int_eq(xen_backend_pick("qemu:///system", NULL, &b, &why), 0);
	ck_assert_str_eq(b->name, "qemu");
	ck_assert(!xen_dom0_running(NULL));
}
END_TEST

Suite *
suite_xen(void)
{
	Suite *s = suite_create("xen");
	TCase *tc = tcase_create("xen");

	/* WITH_XEN comes from the Makefile, as for the code under test. */
	if (WITH_XEN) {
		tcase_add_test(tc, test_xen_registry);
		tcase_add_test(tc, test_xen_dom0);
		tcase_add_test(tc, test_xen_vnc_loopback);
	} else
		tcase_add_test(tc, test_xen_not_built);
	suite_add_tcase(s, tc);
	return s;
}
