/*
 * installer/lv.c against libvirt's test driver: the network and pool XML
 * (golden installer/libvirt-network.xml, libvirt-pool.xml; special
 * characters escaped by libxml2), ensure -> defined, autostarted, active,
 * a second ensure changes nothing, a same-named object of another shape is
 * refused, remove undoes it; which domains --purge counts as vmmod's and
 * that it removes only those and the pool's volumes.
 *
 * test:///default keeps its objects only while a connection is open, so
 * each case holds one for its whole run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common.h"
#include "setup.h"
#include "testutil.h"

#define URI "test:///default"

static void
quiet(void *arg, virErrorPtr e)
{
	(void)arg;
	(void)e;
}

static virConnectPtr
hold(void)
{
	virConnectPtr c;

	virSetErrorFunc(NULL, quiet);
	c = virConnectOpen(URI);
	ck_assert_ptr_nonnull(c);
	return c;
}

START_TEST(test_lv_xml_golden)
{
	char *x = lv_network_xml(GVM_LV_NETWORK, "br0");

	ck_assert(golden_check("installer/libvirt-network.xml", x));
	free(x);
	x = lv_pool_xml(GVM_LV_POOL, "/srv/guardian-vms");
	ck_assert(golden_check("installer/libvirt-pool.xml", x));
	free(x);
	/* a path with XML's special characters stays text */
	x = lv_pool_xml(GVM_LV_POOL, "/srv/a&b<c>'\"");
	ck_assert_ptr_nonnull(
	    strstr(x, "<path>/srv/a&amp;b&lt;c&gt;'\"</path>"));
	free(x);
}
END_TEST

START_TEST(test_lv_network)
{
	virConnectPtr c = hold();
	virNetworkPtr n;
	char *err = NULL;
	bool defined = true;
	int a = 0;

	ck_assert_int_eq(lv_verify(URI, GVM_LV_NETWORK, NULL, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(
	    lv_network_ensure(URI, GVM_LV_NETWORK, "br0", &defined, &err), 0);
	ck_assert(defined);
	ck_assert_int_eq(lv_verify(URI, GVM_LV_NETWORK, NULL, &err), 0);
	n = virNetworkLookupByName(c, GVM_LV_NETWORK);
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(virNetworkIsActive(n), 1);
	ck_assert_int_eq(virNetworkGetAutostart(n, &a), 0);
	ck_assert_int_eq(a, 1);
	virNetworkFree(n);
	/* again: nothing to do, not ours a second time */
	ck_assert_msg(
	    lv_network_ensure(URI, GVM_LV_NETWORK, "br0", &defined, &err) == 0,
	    "%s", err);
	ck_assert(!defined);
	/* a 'guardian' network on another bridge is not taken over */
	ck_assert_int_eq(
	    lv_network_ensure(URI, GVM_LV_NETWORK, "br1", &defined, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "not on br1"));
	ck_assert(!defined);
	free(err);
	err = NULL;
	ck_assert_int_eq(lv_network_remove(URI, GVM_LV_NETWORK, &err), 0);
	n = virNetworkLookupByName(c, GVM_LV_NETWORK);
	ck_assert_ptr_null(n);
	ck_assert_int_eq(lv_network_remove(URI, GVM_LV_NETWORK, &err), 0);
	virConnectClose(c);
}
END_TEST

START_TEST(test_lv_pool)
{
	virConnectPtr c = hold();
	virStoragePoolPtr p;
	char *err = NULL;
	bool defined = false;

	ck_assert_int_eq(
	    lv_pool_ensure(URI, GVM_LV_POOL, "/srv/gvm", &defined, &err), 0);
	ck_assert(defined);
	ck_assert_int_eq(lv_verify(URI, NULL, GVM_LV_POOL, &err), 0);
	ck_assert_int_eq(
	    lv_pool_ensure(URI, GVM_LV_POOL, "/srv/gvm", &defined, &err), 0);
	ck_assert(!defined);
	ck_assert_int_eq(
	    lv_pool_ensure(URI, GVM_LV_POOL, "/srv/other", &defined, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "exists at /srv/gvm"));
	free(err);
	err = NULL;
	ck_assert_int_eq(lv_pool_remove(URI, GVM_LV_POOL, &err), 0);
	p = virStoragePoolLookupByName(c, GVM_LV_POOL);
	ck_assert_ptr_null(p);
	virConnectClose(c);
}
END_TEST

static const char *dom_meta =
    "<domain type='kvm'><name>ha</name><metadata>"
    "<gvm:vm xmlns:gvm='https://guardian.hookprobe.com/vmmod/1'>"
    "<gvm:template>homeassistant</gvm:template></gvm:vm></metadata>"
    "</domain>";

static char *
dom_disk(const char *name, const char *file)
{
	char *x;

	/* test input only; the product builds XML with libxml2 */
	xasprintf(&x,
	    "<domain type='test'><name>%s</name><memory>65536</memory>"
	    "<os><type>hvm</type></os><devices><disk type='file' "
	    "device='disk'><source file='%s'/><target dev='vda' "
	    "bus='virtio'/></disk></devices></domain>",
	    name, file);
	return x;
}

START_TEST(test_lv_ours)
{
	char *x;

	ck_assert(lv_domain_ours(dom_meta, GVM_LV_POOL, "/srv/gvm"));
	x = dom_disk("a", "/srv/gvm/a.qcow2");
	ck_assert(lv_domain_ours(x, GVM_LV_POOL, "/srv/gvm"));
	free(x);
	x = dom_disk("b", "/srv/gvm2/b.qcow2");
	ck_assert(!lv_domain_ours(x, GVM_LV_POOL, "/srv/gvm"));
	free(x);
	ck_assert(lv_domain_ours("<domain><devices><disk><source "
				 "pool='guardian-vms' volume='v'/></disk>"
				 "</devices></domain>",
	    GVM_LV_POOL, "/srv/gvm"));
	ck_assert(!lv_domain_ours(
	    "<domain><name>x</name></domain>", GVM_LV_POOL, "/srv/gvm"));
	ck_assert(!lv_domain_ours("not xml", GVM_LV_POOL, "/srv/gvm"));
}
END_TEST

START_TEST(test_lv_purge)
{
	virConnectPtr c = hold();
	virDomainPtr d;
	virStoragePoolPtr p;
	virStorageVolPtr v;
	char *x, *names = NULL, *err = NULL;
	bool defined;
	size_t nvol = 9;

	ck_assert_int_eq(
	    lv_pool_ensure(URI, GVM_LV_POOL, "/srv/gvm", &defined, &err), 0);
	p = virStoragePoolLookupByName(c, GVM_LV_POOL);
	v = virStorageVolCreateXML(p,
	    "<volume><name>a.qcow2</name><capacity>1024</capacity></volume>",
	    0);
	ck_assert_ptr_nonnull(v);
	virStorageVolFree(v);
	x = dom_disk("mine", "/srv/gvm/a.qcow2");
	d = virDomainDefineXML(c, x);
	free(x);
	ck_assert_ptr_nonnull(d);
	virDomainFree(d);
	x = dom_disk("theirs", "/var/lib/libvirt/images/t.qcow2");
	d = virDomainDefineXML(c, x);
	free(x);
	ck_assert_ptr_nonnull(d);
	virDomainFree(d);

	/* plain uninstall: only named */
	ck_assert_int_eq(
	    lv_purge(URI, GVM_LV_POOL, "/srv/gvm", true, &names, &nvol, &err),
	    0);
	ck_assert_str_eq(names, "mine");
	ck_assert_uint_eq(nvol, 0);
	free(names);
	d = virDomainLookupByName(c, "mine");
	ck_assert_ptr_nonnull(d);
	virDomainFree(d);

	ck_assert_int_eq(
	    lv_purge(URI, GVM_LV_POOL, "/srv/gvm", false, &names, &nvol, &err),
	    0);
	ck_assert_str_eq(names, "mine");
	ck_assert_uint_eq(nvol, 1);
	free(names);
	ck_assert_ptr_null(virDomainLookupByName(c, "mine"));
	d = virDomainLookupByName(c, "theirs");
	ck_assert_ptr_nonnull(d);
	virDomainUndefine(d);
	virDomainFree(d);
	ck_assert_int_eq(virStoragePoolNumOfVolumes(p), 0);
	virStoragePoolFree(p);
	ck_assert_int_eq(lv_pool_remove(URI, GVM_LV_POOL, &err), 0);
	virConnectClose(c);
}
END_TEST

Suite *
suite_lvsetup(void)
{
	Suite *s = suite_create("lvsetup");
	TCase *tc = tcase_create("lvsetup");

	tcase_add_test(tc, test_lv_xml_golden);
	tcase_add_test(tc, test_lv_network);
	tcase_add_test(tc, test_lv_pool);
	tcase_add_test(tc, test_lv_ours);
	tcase_add_test(tc, test_lv_purge);
	suite_add_tcase(s, tc);
	return s;
}
