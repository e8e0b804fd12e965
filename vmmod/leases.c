/*
 * Which IP address does a VM's MAC have?  libvirt's domifaddr only knows its
 * own dnsmasq, and Guardian runs its own, so we read what that dnsmasq reads
 * and writes: our reservation files (dhcp-hostsdir format, one
 * "MAC[,MAC...],IP[,hostname][,lease time]" per line) and its lease file
 * ("expiry MAC IP hostname client-id" per line).  A reservation wins over a
 * lease: it is the address the VM will get, and the lease may be stale.
 * Among leases for one MAC the one expiring last wins (0 means infinite).
 * Malformed lines are skipped and missing files are simply empty: this runs
 * on every list request and must never fail a caller.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmmod.h"

#define LEASES_MAX_FILE (4 << 20)

struct lease {
	char mac[18]; /* lower case aa:bb:cc:dd:ee:ff */
	char ip[INET6_ADDRSTRLEN];
	unsigned long long expiry; /* ULLONG_MAX: reservation or infinite */
	bool reserved;
};

struct lease_map {
	struct lease *v;
	size_t n, cap;
};

/* Copies a MAC in canonical lower case; -1 unless exactly xx:xx:xx:xx:xx:xx. */
static int
leases_mac(const char *s, size_t len, char out[18])
{
	size_t i;
	char ch;

	if (len != 17)
		return -1;
	for (i = 0; i < 17; i++) {
		ch = s[i];
		if (i % 3 == 2 ? ch != ':' : !isxdigit((unsigned char)ch))
			return -1;
		out[i] = tolower((unsigned char)ch);
	}
	out[17] = '\0';
	return 0;
}

/* Copies an IPv4 or IPv6 address ("[v6]" as in dhcp-host); -1 if not one. */
static int
leases_ip(const char *s, size_t len, char out[INET6_ADDRSTRLEN])
{
	unsigned char bin[sizeof(struct in6_addr)];
	char tmp[INET6_ADDRSTRLEN];

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, bin) != 1 &&
	    inet_pton(AF_INET6, tmp, bin) != 1)
		return -1;
	memcpy(out, tmp, len + 1);
	return 0;
}

static struct lease *
leases_find(const struct lease_map *lm, const char *mac)
{
	size_t i;

	for (i = 0; i < lm->n; i++)
		if (strcmp(lm->v[i].mac, mac) == 0)
			return &lm->v[i];
	return NULL;
}

/*
 * Records mac → ip unless a better entry exists: reservations beat leases,
 * the first reservation for a MAC beats later ones, and a lease beats an
 * older lease.
 */
static void
leases_add(struct lease_map *lm, const char *mac, const char *ip,
    unsigned long long expiry, bool reserved)
{
	struct lease *l;

	if ((l = leases_find(lm, mac)) != NULL) {
		if (l->reserved || (!reserved && l->expiry >= expiry))
			return;
	} else {
		if (lm->n == lm->cap) {
			lm->cap = lm->cap ? lm->cap * 2 : 16;
			lm->v = xreallocarray(lm->v, lm->cap, sizeof(*lm->v));
		}
		l = &lm->v[lm->n++];
		memcpy(l->mac, mac, sizeof(l->mac));
	}
	snprintf(l->ip, sizeof(l->ip), "%s", ip);
	l->expiry = expiry;
	l->reserved = reserved;
}

/* "expiry mac ip hostname client-id"; IPv6 (duid/IAID) lines do not parse. */
static void
leases_parse_lease(struct lease_map *lm, char *line)
{
	char *f[3], *save = NULL, *end, mac[18], ip[INET6_ADDRSTRLEN];
	unsigned long long expiry;
	size_t i;

	for (i = 0; i < nitems(f); i++)
		if ((f[i] = strtok_r(i == 0 ? line : NULL, " \t\r", &save)) ==
		    NULL)
			return;
	if (f[0][0] < '0' || f[0][0] > '9')
		return;
	errno = 0;
	expiry = strtoull(f[0], &end, 10);
	if (errno != 0 || *end != '\0')
		return;
	if (leases_mac(f[1], strlen(f[1]), mac) == -1 ||
	    leases_ip(f[2], strlen(f[2]), ip) == -1)
		return;
	leases_add(lm, mac, ip, expiry == 0 ? ~0ULL : expiry, false);
}

/*
 * A dhcp-host line: comma separated MACs, one address, and words we do not
 * need (hostname, lease time, id:, set:, tag:, ignore).  Lines without both
 * a MAC and an address are skipped.
 */
static void
leases_parse_host(struct lease_map *lm, char *line)
{
	char macs[8][18], ip[INET6_ADDRSTRLEN] = "", *f, *save = NULL;
	size_t nmacs = 0, i, len;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '#')
		return;
	for (f = strtok_r(line, ",", &save); f != NULL;
	     f = strtok_r(NULL, ",", &save)) {
		while (*f == ' ' || *f == '\t')
			f++;
		len = strcspn(f, " \t\r");
		if (nmacs < nitems(macs) &&
		    leases_mac(f, len, macs[nmacs]) == 0)
			nmacs++;
		else if (ip[0] == '\0')
			(void)leases_ip(f, len, ip);
	}
	if (ip[0] == '\0')
		return;
	for (i = 0; i < nmacs; i++)
		leases_add(lm, macs[i], ip, ~0ULL, true);
}

static void
leases_read(struct lease_map *lm, const char *path,
    void (*parse)(struct lease_map *, char *))
{
	char *buf, *line, *next;

	if ((buf = read_file(path, LEASES_MAX_FILE, NULL)) == NULL) {
		if (errno != ENOENT)
			log_warn("%s: %s", __func__, path);
		return;
	}
	for (line = buf; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		parse(lm, line);
	}
	free(buf);
}

/* dnsmasq's hostsdir skips dot files and editor backups ("x~", "#x#"). */
static int
leases_dirent_ok(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	if (de->d_name[0] == '.' || de->d_name[len - 1] == '~')
		return 0;
	if (de->d_name[0] == '#' && de->d_name[len - 1] == '#')
		return 0;
	return de->d_type == DT_REG || de->d_type == DT_UNKNOWN ||
	    de->d_type == DT_LNK;
}

struct lease_map *
leases_load(const char *lease_file, const char *reservations_dir)
{
	struct lease_map *lm = xcalloc(1, sizeof(*lm));
	struct dirent **names = NULL;
	char *path;
	int i, n;

	/* reservations first, in name order, so the first one for a MAC wins */
	if (reservations_dir != NULL) {
		n = scandir(
		    reservations_dir, &names, leases_dirent_ok, alphasort);
		if (n == -1 && errno != ENOENT)
			log_warn("%s: %s", __func__, reservations_dir);
		for (i = 0; i < n; i++) {
			xasprintf(
			    &path, "%s/%s", reservations_dir, names[i]->d_name);
			leases_read(lm, path, leases_parse_host);
			free(path);
			free(names[i]);
		}
		free(names);
	}
	if (lease_file != NULL)
		leases_read(lm, lease_file, leases_parse_lease);
	return lm;
}

const char *
leases_ip_for_mac(const struct lease_map *lm, const char *mac)
{
	const struct lease *l;
	char key[18];

	if (lm == NULL || mac == NULL ||
	    leases_mac(mac, strlen(mac), key) == -1)
		return NULL;
	l = leases_find(lm, key);
	return l != NULL ? l->ip : NULL;
}

void
leases_free(struct lease_map *lm)
{
	if (lm == NULL)
		return;
	free(lm->v);
	free(lm);
}
