/*
 * Where VM disks may live, for the storage screen: the mounted
 * filesystems that can hold them, their free space, and what they sit on,
 * so an SSD is offered before the Pi's SD card (which wears out and is
 * slow) and a filesystem too small for a 32 GB Home Assistant disk comes
 * last.  storage_scan reads mounts, statvfs and sysfs (under --root when
 * the tree has them, like facts.c); the rest is pure.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <ctype.h>
#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "setup.h"

bool
storage_wanted(const char *dev, const char *fstype, bool readonly)
{
	/* vfat/exfat (the Pi's /boot/firmware) cannot hold a 32 GB qcow2. */
	static const char *ok[] = {
	    "ext4", "ext3", "ext2", "xfs", "btrfs", "f2fs", "jfs"};
	size_t i;

	if (readonly || !str_has_prefix(dev, "/dev/"))
		return false;
	for (i = 0; i < nitems(ok); i++)
		if (strcmp(fstype, ok[i]) == 0)
			return true;
	return false;
}

/* Strips a partition suffix: "p<digits>" after a digit, else digits. */
void
storage_disk_of(const char *dev, char *disk, size_t len)
{
	const char *name = dev;
	size_t n;

	disk[0] = '\0';
	if (str_has_prefix(name, "/dev/"))
		name += 5;
	if (strchr(name, '/') != NULL || str_has_prefix(name, "dm-") ||
	    strcmp(name, "root") == 0 || name[0] == '\0')
		return; /* mapper, by-uuid, /dev/root: not from the name */
	n = strlen(name);
	if (str_has_prefix(name, "mmcblk") || str_has_prefix(name, "nvme") ||
	    str_has_prefix(name, "loop")) {
		/* mmcblk0p2, nvme0n1p1: the disk ends in a digit */
		const char *p = name + n;

		while (p > name && isdigit((unsigned char)p[-1]))
			p--;
		if (p > name + 1 && p[-1] == 'p' &&
		    isdigit((unsigned char)p[-2]) && *p != '\0')
			n = p - 1 - name;
	} else {
		while (n > 0 && isdigit((unsigned char)name[n - 1]))
			n--;
	}
	if (n == 0 || n >= len)
		return;
	memcpy(disk, name, n);
	disk[n] = '\0';
}

enum storage_media
storage_media_of(const char *disk, int rotational)
{
	if (str_has_prefix(disk, "mmcblk"))
		return MEDIA_SD;
	if (str_has_prefix(disk, "nvme"))
		return MEDIA_SSD;
	if (str_has_prefix(disk, "loop") || str_has_prefix(disk, "zram") ||
	    str_has_prefix(disk, "ram") || disk[0] == '\0')
		return MEDIA_OTHER;
	if (rotational == 0)
		return MEDIA_SSD;
	if (rotational == 1)
		return MEDIA_HDD;
	return MEDIA_DISK;
}

const char *
storage_media_name(enum storage_media m)
{
	switch (m) {
	case MEDIA_SSD:
		return "SSD";
	case MEDIA_DISK:
		return "disk";
	case MEDIA_HDD:
		return "HDD";
	case MEDIA_SD:
		return "SD card";
	default:
		return "other";
	}
}

int
storage_add(struct storage_list *l, const struct storage_fs *fs)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->fs[i].dev, fs->dev) != 0)
			continue;
		/* a bind mount or a second mount of the same device */
		if (strlen(fs->dir) < strlen(l->fs[i].dir)) {
			l->fs[i] = *fs;
			l->fs[i].fits = fs->free_mb >= STORAGE_HA_MB;
		}
		return 0;
	}
	if (l->n == STORAGE_MAX)
		return -1;
	l->fs[l->n] = *fs;
	l->fs[l->n].fits = fs->free_mb >= STORAGE_HA_MB;
	l->n++;
	return 0;
}

static int
storage_cmp(const void *a, const void *b)
{
	const struct storage_fs *x = a, *y = b;

	if (x->fits != y->fits)
		return x->fits ? -1 : 1;
	if (x->media != y->media)
		return x->media < y->media ? -1 : 1;
	if (x->free_mb != y->free_mb)
		return x->free_mb > y->free_mb ? -1 : 1;
	return strcmp(x->dir, y->dir);
}

void
storage_rank(struct storage_list *l)
{
	qsort(l->fs, l->n, sizeof(l->fs[0]), storage_cmp);
}

static bool
storage_under(const char *mnt, const char *dir)
{
	size_t n = strlen(mnt);

	if (strcmp(mnt, "/") == 0)
		return dir[0] == '/';
	return strncmp(mnt, dir, n) == 0 && (dir[n] == '/' || dir[n] == '\0');
}

long
storage_find(const struct storage_list *l, const char *dir)
{
	size_t i, best_len = 0;
	long best = -1;

	for (i = 0; i < l->n; i++)
		if (storage_under(l->fs[i].dir, dir) &&
		    (best == -1 || strlen(l->fs[i].dir) > best_len)) {
			best = (long)i;
			best_len = strlen(l->fs[i].dir);
		}
	return best;
}

char *
storage_dir_for(const struct storage_list *l, size_t i)
{
	char *s;

	if (storage_find(l, GVM_STORAGE_DEFAULT) == (long)i)
		return xstrdup(GVM_STORAGE_DEFAULT);
	xasprintf(&s, "%s/guardian-vms",
	    strcmp(l->fs[i].dir, "/") == 0 ? "" : l->fs[i].dir);
	return s;
}

/* statvfs of ROOT/DIR, or of its nearest existing parent. */
static void
storage_space(const char *root, const char *dir, struct storage_fs *fs)
{
	char p[4096], *slash;
	struct statvfs sv;

	if ((size_t)snprintf(p, sizeof(p), "%s%s", root, dir) >= sizeof(p))
		return;
	for (;;) {
		if (statvfs(p, &sv) == 0) {
			fs->free_mb =
			    (uint64_t)sv.f_bavail * sv.f_frsize / (1024 * 1024);
			fs->size_mb =
			    (uint64_t)sv.f_blocks * sv.f_frsize / (1024 * 1024);
			return;
		}
		if ((slash = strrchr(p, '/')) == NULL || slash == p)
			return;
		*slash = '\0';
	}
}

/* /dev/root and friends: the disk from the mount point's st_dev. */
static void
storage_disk_from_stat(const char *dir, char *disk, size_t len)
{
	char link[64], buf[512], *base, *parent;
	struct stat st;
	ssize_t n;

	if (stat(dir, &st) == -1)
		return;
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(st.st_dev),
	    minor(st.st_dev));
	if ((n = readlink(link, buf, sizeof(buf) - 1)) <= 0)
		return;
	buf[n] = '\0';
	/* .../block/mmcblk0/mmcblk0p2: the parent, or the disk itself */
	base = strrchr(buf, '/');
	if (base == NULL)
		return;
	*base++ = '\0';
	parent = strrchr(buf, '/');
	if (parent != NULL && strcmp(parent + 1, "block") != 0)
		base = parent + 1;
	snprintf(disk, len, "%s", base);
}

static int
storage_rotational(const char *root, const char *disk)
{
	char *p, *text = NULL;
	int r = -1;

	if (root[0] != '\0') {
		xasprintf(&p, "%s/sys/block/%s/queue/rotational", root, disk);
		text = read_file(p, 64, NULL);
		free(p);
	}
	if (text == NULL) {
		xasprintf(&p, "/sys/block/%s/queue/rotational", disk);
		text = read_file(p, 64, NULL);
		free(p);
	}
	if (text != NULL && (text[0] == '0' || text[0] == '1'))
		r = text[0] - '0';
	free(text);
	return r;
}

int
storage_scan(const char *root, struct storage_list *l, char **errp)
{
	struct storage_fs fs;
	struct mntent *me;
	char *path = NULL;
	FILE *f;

	memset(l, 0, sizeof(*l));
	if (root[0] != '\0') {
		xasprintf(&path, "%s/proc/mounts", root);
		if (access(path, R_OK) == -1) {
			free(path);
			path = NULL;
		}
	}
	if (path == NULL)
		path = xstrdup("/proc/self/mounts");
	if ((f = setmntent(path, "r")) == NULL) {
		if (errp != NULL)
			xasprintf(errp, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while ((me = getmntent(f)) != NULL) {
		if (!storage_wanted(me->mnt_fsname, me->mnt_type,
			hasmntopt(me, "ro") != NULL))
			continue;
		memset(&fs, 0, sizeof(fs));
		snprintf(fs.dir, sizeof(fs.dir), "%s", me->mnt_dir);
		snprintf(fs.dev, sizeof(fs.dev), "%s", me->mnt_fsname);
		snprintf(fs.fstype, sizeof(fs.fstype), "%s", me->mnt_type);
		storage_disk_of(fs.dev, fs.disk, sizeof(fs.disk));
		if (fs.disk[0] == '\0' && root[0] == '\0')
			storage_disk_from_stat(
			    fs.dir, fs.disk, sizeof(fs.disk));
		fs.media = storage_media_of(fs.disk,
		    fs.disk[0] ? storage_rotational(root, fs.disk) : -1);
		storage_space(root, fs.dir, &fs);
		if (storage_add(l, &fs) == -1)
			break;
	}
	endmntent(f);
	free(path);
	storage_rank(l);
	return 0;
}
