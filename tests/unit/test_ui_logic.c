/*
 * The pure parts behind the installer's screens: installer/storage.c
 * (which mounts can hold VM disks, what they sit on, the order they are
 * offered in, where the disks go) and installer/budget.c (the host check's
 * RAM table).  storage_scan runs against a staged ROOT/proc/mounts and
 * ROOT/sys/block, like the --root runs of the program.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"
#include "testutil.h"

START_TEST(test_storage_disk_of)
{
	static const struct {
		const char *dev, *disk;
	} cases[] = {
	    {"/dev/mmcblk0p2", "mmcblk0"},
	    {"/dev/mmcblk0", "mmcblk0"},
	    {"/dev/mmcblk10p1", "mmcblk10"},
	    {"/dev/nvme0n1p1", "nvme0n1"},
	    {"/dev/nvme0n1", "nvme0n1"},
	    {"/dev/sda1", "sda"},
	    {"/dev/sdab12", "sdab"},
	    {"/dev/sdb", "sdb"},
	    {"/dev/vda", "vda"},
	    {"/dev/loop0p1", "loop0"},
	    {"/dev/mapper/vg-root", ""},
	    {"/dev/dm-0", ""},
	    {"/dev/root", ""},
	    {"/dev/disk/by-uuid/1234", ""},
	    {"/dev/", ""},
	};
	char disk[32];
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		storage_disk_of(cases[i].dev, disk, sizeof(disk));
		ck_assert_msg(strcmp(disk, cases[i].disk) == 0,
		    "%s -> '%s', want '%s'", cases[i].dev, disk, cases[i].disk);
	}
	/* too small a buffer: unknown rather than cut */
	storage_disk_of("/dev/nvme0n1p1", disk, 4);
	ck_assert_str_eq(disk, "");
}
END_TEST

START_TEST(test_storage_media)
{
	ck_assert_int_eq(storage_media_of("mmcblk0", -1), MEDIA_SD);
	ck_assert_int_eq(storage_media_of("mmcblk0", 0), MEDIA_SD);
	ck_assert_int_eq(storage_media_of("nvme0n1", 1), MEDIA_SSD);
	ck_assert_int_eq(storage_media_of("sda", 0), MEDIA_SSD);
	ck_assert_int_eq(storage_media_of("sda", 1), MEDIA_HDD);
	ck_assert_int_eq(storage_media_of("sda", -1), MEDIA_DISK);
	ck_assert_int_eq(storage_media_of("loop0", 0), MEDIA_OTHER);
	ck_assert_int_eq(storage_media_of("zram0", 0), MEDIA_OTHER);
	ck_assert_int_eq(storage_media_of("", -1), MEDIA_OTHER);
	ck_assert_str_eq(storage_media_name(MEDIA_SD), "SD card");
	ck_assert_str_eq(storage_media_name(MEDIA_SSD), "SSD");

	ck_assert(storage_wanted("/dev/sda1", "ext4", false));
	ck_assert(storage_wanted("/dev/nvme0n1p1", "btrfs", false));
	ck_assert(!storage_wanted("/dev/sda1", "ext4", true));
	ck_assert(!storage_wanted("/dev/mmcblk0p1", "vfat", false));
	ck_assert(!storage_wanted("tmpfs", "tmpfs", false));
	ck_assert(!storage_wanted("overlay", "overlay", false));
	ck_assert(!storage_wanted("proc", "proc", false));
}
END_TEST

static void
add(struct storage_list *l, const char *dir, const char *dev,
    enum storage_media m, uint64_t free_mb)
{
	struct storage_fs fs;

	memset(&fs, 0, sizeof(fs));
	snprintf(fs.dir, sizeof(fs.dir), "%s", dir);
	snprintf(fs.dev, sizeof(fs.dev), "%s", dev);
	storage_disk_of(dev, fs.disk, sizeof(fs.disk));
	fs.media = m;
	fs.free_mb = free_mb;
	ck_assert_int_eq(storage_add(l, &fs), 0);
}

START_TEST(test_storage_rank)
{
	struct storage_list l;
	char *dir;

	memset(&l, 0, sizeof(l));
	/* a Pi 5: SD card root, a small and a big SSD, a USB HDD */
	add(&l, "/", "/dev/mmcblk0p2", MEDIA_SD, 50 * 1024);
	add(&l, "/mnt/small", "/dev/nvme0n1p2", MEDIA_SSD, 10 * 1024);
	add(&l, "/mnt/hdd", "/dev/sdb1", MEDIA_HDD, 900 * 1024);
	add(&l, "/mnt/ssd", "/dev/nvme0n1p1", MEDIA_SSD, 200 * 1024);
	add(&l, "/mnt/usb", "/dev/sda1", MEDIA_DISK, STORAGE_HA_MB);
	/* a bind mount of the SSD: one entry, the shorter mount point */
	add(&l, "/mnt/ssd/bind", "/dev/nvme0n1p1", MEDIA_SSD, 200 * 1024);
	ck_assert_uint_eq(l.n, 5);
	storage_rank(&l);
	/* room for a 32 GB disk first; then SSD, disk, HDD, SD card */
	ck_assert_str_eq(l.fs[0].dir, "/mnt/ssd");
	ck_assert_str_eq(l.fs[1].dir, "/mnt/usb");
	ck_assert(l.fs[1].fits); /* exactly enough */
	ck_assert_str_eq(l.fs[2].dir, "/mnt/hdd");
	ck_assert_str_eq(l.fs[3].dir, "/");
	ck_assert_str_eq(l.fs[4].dir, "/mnt/small");
	ck_assert(!l.fs[4].fits);

	/* the disks go to the default when it lies on that fs */
	ck_assert_int_eq(storage_find(&l, GVM_STORAGE_DEFAULT), 3);
	ck_assert_int_eq(storage_find(&l, "/mnt/ssd/vms"), 0);
	ck_assert_int_eq(storage_find(&l, "/mnt/ssdx/vms"), 3);
	ck_assert_int_eq(storage_find(&l, "/mnt/hdd"), 2);
	dir = storage_dir_for(&l, 3);
	ck_assert_str_eq(dir, GVM_STORAGE_DEFAULT);
	free(dir);
	dir = storage_dir_for(&l, 0);
	ck_assert_str_eq(dir, "/mnt/ssd/guardian-vms");
	free(dir);

	/* a separate /var holds the default, / does not */
	memset(&l, 0, sizeof(l));
	add(&l, "/", "/dev/sda1", MEDIA_DISK, 100 * 1024);
	add(&l, "/var", "/dev/sda2", MEDIA_DISK, 100 * 1024);
	ck_assert_int_eq(storage_find(&l, GVM_STORAGE_DEFAULT), 1);
	dir = storage_dir_for(&l, 0);
	ck_assert_str_eq(dir, "/guardian-vms");
	free(dir);

	/* full */
	memset(&l, 0, sizeof(l));
	for (size_t i = 0; i < STORAGE_MAX; i++) {
		char d[32], dev[32];

		snprintf(d, sizeof(d), "/m%zu", i);
		snprintf(dev, sizeof(dev), "/dev/sd%c1", (char)('a' + i));
		add(&l, d, dev, MEDIA_DISK, 1);
	}
	{
		struct storage_fs fs = {.dir = "/x", .dev = "/dev/vdz1"};

		ck_assert_int_eq(storage_add(&l, &fs), -1);
	}
}
END_TEST

static void
put(const char *root, const char *rel, const char *text)
{
	char *p, *cmd;

	xasprintf(&p, "%s/%s", root, rel);
	xasprintf(&cmd, "mkdir -p \"$(dirname '%s')\"", p);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(write_file_atomic(p, text, strlen(text), 0644), 0);
	free(cmd);
	free(p);
}

START_TEST(test_storage_scan)
{
	char root[] = "/tmp/gvm-ui-logic.XXXXXX", *cmd, *err = NULL;
	struct storage_list l;

	ck_assert_ptr_nonnull(mkdtemp(root));
	put(root, "proc/mounts",
	    "/dev/mmcblk0p2 / ext4 rw,noatime 0 0\n"
	    "/dev/mmcblk0p1 /boot/firmware vfat rw 0 0\n"
	    "proc /proc proc rw 0 0\n"
	    "tmpfs /run tmpfs rw 0 0\n"
	    "/dev/sda1 /mnt/usb ext4 rw,relatime 0 0\n"
	    "/dev/sdb1 /mnt/backup ext4 ro 0 0\n"
	    "/dev/sda1 /srv/bind ext4 rw 0 0\n");
	put(root, "sys/block/sda/queue/rotational", "0\n");
	ck_assert_int_eq(storage_scan(root, &l, &err), 0);
	ck_assert_uint_eq(l.n, 2);
	/* the same free space (one tmp filesystem): the SSD first */
	ck_assert_str_eq(l.fs[0].dir, "/mnt/usb");
	ck_assert_str_eq(l.fs[0].disk, "sda");
	ck_assert_int_eq(l.fs[0].media, MEDIA_SSD);
	ck_assert_str_eq(l.fs[1].dir, "/");
	ck_assert_int_eq(l.fs[1].media, MEDIA_SD);
	ck_assert_uint_gt(l.fs[1].free_mb, 0);
	ck_assert_uint_eq(l.fs[0].free_mb, l.fs[1].free_mb);

	xasprintf(&cmd, "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}
END_TEST

START_TEST(test_budget)
{
	struct budget b;

	/* an 8 GB Pi 5 with Guardian: MemTotal 8126464 kB */
	budget_table(7936, true, &b);
	ck_assert(b.gate_ok);
	ck_assert_uint_eq(b.vm_mb, 5888); /* plan.c's "RAM for VMs" */
	ck_assert_int_eq(b.left_mb, 1792);
	ck_assert_uint_eq(b.n, 5);
	ck_assert_str_eq(b.rows[0].what, "Host system and buffer");
	ck_assert_uint_eq(b.rows[0].ram_mb, 512);
	ck_assert_str_eq(b.rows[1].what, "Guardian core and containers");
	ck_assert_uint_eq(b.rows[1].ram_mb, 1536);
	ck_assert_str_eq(b.rows[2].what, "Home Assistant VM");
	ck_assert_str_eq(b.rows[2].disk, "32 GB");
	ck_assert(b.rows[2].vm && b.rows[2].fits);
	ck_assert(b.rows[3].vm && b.rows[3].fits);
	ck_assert_uint_eq(b.rows[4].ram_mb, 1792);

	/* exactly the gate */
	budget_table(BUDGET_GUARDIAN_MIN_MB, true, &b);
	ck_assert(b.gate_ok);
	ck_assert(b.rows[2].fits);
	ck_assert(!b.rows[3].fits);
	ck_assert_int_lt(b.left_mb, 0);
	ck_assert_uint_eq(b.rows[4].ram_mb, 0);

	/* a 4 GB Pi with Guardian: below the gate, HA does not fit */
	budget_table(3884, true, &b);
	ck_assert(!b.gate_ok);
	ck_assert_uint_eq(b.vm_mb, 1836);
	ck_assert(!b.rows[2].fits);

	/* no Guardian: no gate, the same reserve under another name */
	budget_table(3884, false, &b);
	ck_assert(b.gate_ok);
	ck_assert_str_eq(b.rows[1].what, "Host services (kept back)");
	ck_assert_str_eq(b.rows[1].disk, "-");

	/* less RAM than the reserve */
	budget_table(1024, false, &b);
	ck_assert_uint_eq(b.vm_mb, 0);
	ck_assert_int_eq(b.left_mb, -4096);
}
END_TEST

Suite *
suite_ui_logic(void)
{
	Suite *s = suite_create("ui_logic");
	TCase *tc = tcase_create("ui_logic");

	tcase_add_test(tc, test_storage_disk_of);
	tcase_add_test(tc, test_storage_media);
	tcase_add_test(tc, test_storage_rank);
	tcase_add_test(tc, test_storage_scan);
	tcase_add_test(tc, test_budget);
	suite_add_tcase(s, tc);
	return s;
}
