/*
 * vmmod: main.  Reads the configuration (file, then command-line flags),
 * decides KVM or TCG by probing, starts the libvirt side (virt.c) and the
 * HTTP side (http.c), tells systemd it is ready, then waits for signals:
 * SIGHUP re-reads the configuration, SIGTERM/SIGINT stop cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "vmmod.h"

#define DEFAULT_CONF SYSCONFDIR "/vmmod/vmmod.conf"
#define GUARDIAN_RESERVE_MB 512
#define SYSTEM_BUFFER_MB 1536

/* Command-line values win over the file, also after a reload. */
struct cli {
	const char *uri, *listen, *socket, *token_file, *data_dir, *templates;
	const char *web_root, *accel;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: vmmod [-dn] [-f FILE] [--uri URI] [--listen HOST:PORT]\n"
	    "             [--socket PATH] [--token-file PATH] [--data-dir DIR]\n"
	    "             [--templates DIR] [--web-root DIR] [--accel auto|kvm|tcg]\n"
	    "\n"
	    "The Guardian VMs daemon: a JSON API over libvirt for the Guardian\n"
	    "dashboard and guardian-vm-setup.  See vmmod(8) and vmmod.conf(5).\n"
	    "\n"
	    "  -f FILE            configuration file (default " DEFAULT_CONF
	    ")\n"
	    "  -n                 check the configuration and exit\n"
	    "  -d                 stay in the foreground with debug logging\n"
	    "  --uri URI          libvirt URI (default qemu:///system)\n"
	    "  --listen HOST:PORT also listen on TCP (bearer token needed)\n"
	    "  --socket PATH      Unix socket path\n"
	    "  --token-file PATH  bearer token file (created 0600 if missing)\n"
	    "  --data-dir DIR     state directory\n"
	    "  --templates DIR    template catalog directory\n"
	    "  --web-root DIR     web assets directory\n"
	    "  --accel MODE       auto (probe KVM), kvm or tcg\n"
	    "  -h, --help         this text;  -V, --version  the version\n");
}

/* Applies the flags through conf_set: the same checks as the file. */
static int
apply_cli(struct vmmod_conf *conf, const struct cli *cli)
{
	const struct {
		const char *flag, *key, *val;
	} kv[] = {
	    {"uri", "uri", cli->uri},
	    {"listen", "listen", cli->listen},
	    {"socket", "socket", cli->socket},
	    {"token-file", "token_file", cli->token_file},
	    {"data-dir", "data_dir", cli->data_dir},
	    {"templates", "templates_dir", cli->templates},
	    {"web-root", "web_root", cli->web_root},
	    {"accel", "accel", cli->accel},
	};
	char *err = NULL;
	size_t i;

	for (i = 0; i < nitems(kv); i++) {
		if (kv[i].val == NULL)
			continue;
		if (conf_set(conf, kv[i].key, kv[i].val, &err) < 0) {
			log_warnx(
			    "--%s: %s", kv[i].flag, err ? err : "invalid");
			free(err);
			return -1;
		}
	}
	return 0;
}

/* Loads defaults, then the file (if given or present), then the flags. */
static int
load_conf(struct vmmod_conf *conf, const char *file, bool explicit_file,
    const struct cli *cli)
{
	char *err = NULL;

	conf_init(conf);
	if (explicit_file || access(file, F_OK) == 0) {
		if (conf_load(conf, file, &err) < 0) {
			log_warnx("%s", err ? err : "configuration error");
			free(err);
			conf_clear(conf);
			return -1;
		}
	}
	if (apply_cli(conf, cli) < 0) {
		conf_clear(conf);
		return -1;
	}
	return 0;
}

static const char *
host_arch(void)
{
	static struct utsname u;
	const char *env = getenv("VMMOD_ARCH");

	/* Tests deploy arm64 appliances on an x86 build host (TCG). */
	if (env != NULL &&
	    (strcmp(env, "aarch64") == 0 || strcmp(env, "x86_64") == 0)) {
		log_warnx("VMMOD_ARCH=%s: acting as an %s host", env, env);
		return env;
	}
	if (uname(&u) == 0 && strcmp(u.machine, "aarch64") == 0)
		return "aarch64";
	if (strcmp(u.machine, "x86_64") == 0)
		return "x86_64";
	return u.machine;
}

/*
 * After a burst of requests, hand the freed memory back.  Requests of many
 * threads leave free chunks scattered over malloc's second arena, which
 * the trim threshold alone never returns (only the top of a heap is
 * trimmed); malloc_trim(0) releases every free page.  The first request
 * after a quiet spell sends the main thread SIGUSR2 (api.c's burst hook);
 * from then on it looks every 5 s, and on the first tick that saw no
 * request it trims and goes back to waiting without a timeout.  An idle
 * daemon never wakes for it; a steady load costs one signal per 5 s.
 */
static const struct timespec trim_tick = {5, 0};
static pthread_t main_tid;

static void
burst_started(void)
{
	pthread_kill(main_tid, SIGUSR2);
}

/*
 * SIGHUP: the template catalog read again.  The new one serves new
 * requests and jobs; the old ones stay allocated (a few KB each) until
 * shutdown, since a job that started with one may still be using it.
 * Appended to *list, freed after deploy_shutdown.
 */
static void
reload_catalog(const struct vmmod_conf *c, struct catalog ***list, size_t *n)
{
	struct catalog *cat = catalog_load(c->templates_dir,
	    strcmp(host_arch(), "aarch64") == 0 ? VM_ARCH_AARCH64
						: VM_ARCH_X86_64,
	    c->appliance_dir);

	if (cat == NULL) {
		log_warnx(
		    "%s: keeping the old template catalog", c->templates_dir);
		return;
	}
	*list = xreallocarray(*list, *n + 1, sizeof(**list));
	(*list)[(*n)++] = cat;
	deploy_set_catalog(cat);
}

int
main(int argc, char *argv[])
{
	enum {
		O_URI = 256,
		O_LISTEN,
		O_SOCKET,
		O_TOKEN,
		O_DATA,
		O_TEMPLATES,
		O_WEB,
		O_ACCEL
	};
	static const struct option longopts[] = {
	    {"uri", required_argument, NULL, O_URI},
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"socket", required_argument, NULL, O_SOCKET},
	    {"token-file", required_argument, NULL, O_TOKEN},
	    {"data-dir", required_argument, NULL, O_DATA},
	    {"templates", required_argument, NULL, O_TEMPLATES},
	    {"web-root", required_argument, NULL, O_WEB},
	    {"accel", required_argument, NULL, O_ACCEL},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	struct vmmod_conf conf, next;
	struct reserve_params rp;
	struct catalog *catalog, **catalogs = NULL; /* + reloaded ones */
	size_t i, ncatalogs = 0;
	struct reserve *reserve;
	char *state_file, *rerr = NULL, *restart;
	struct host_facts host;
	struct cli cli = {0};
	struct sysinfo si;
	const char *file = DEFAULT_CONF;
	char *why = NULL;
	enum accel_mode accel;
	const struct vm_backend *backend;
	bool explicit_file = false, check_only = false;
	int ch, debug = 0, sig, rc = 0;
	unsigned long seen = 0;
	bool ticking = false;
	sigset_t set;

	/*
	 * A small daemon with a dozen threads: glibc would give busy threads
	 * arenas of their own and keep what they freed.  Two arenas and a
	 * fixed trim threshold hand memory back after a burst of requests.
	 */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	log_init("vmmod", 0);
	while ((ch = getopt_long(argc, argv, "df:nhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			file = optarg;
			explicit_file = true;
			break;
		case 'n':
			check_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vmmod %s\n", VMMOD_VERSION);
			return 0;
		case O_URI:
			cli.uri = optarg;
			break;
		case O_LISTEN:
			cli.listen = optarg;
			break;
		case O_SOCKET:
			cli.socket = optarg;
			break;
		case O_TOKEN:
			cli.token_file = optarg;
			break;
		case O_DATA:
			cli.data_dir = optarg;
			break;
		case O_TEMPLATES:
			cli.templates = optarg;
			break;
		case O_WEB:
			cli.web_root = optarg;
			break;
		case O_ACCEL:
			cli.accel = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (load_conf(&conf, file, explicit_file, &cli) < 0)
		return 1;
	if (debug)
		conf.debug = 1;
	log_init("vmmod", conf.debug);
	if (check_only) {
		printf("configuration OK\n");
		conf_clear(&conf);
		return 0;
	}

	/* Every thread inherits this mask; only main takes these signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR2); /* requests started: trim after them */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	main_tid = pthread_self();
	api_set_burst_hook(burst_started);
	signal(SIGPIPE, SIG_IGN);

	memset(&host, 0, sizeof(host));
	host.arch = host_arch();
	/* The libvirt URI names the backend: qemu:// (KVM or TCG), xen://
	 * (libxl, x86 builds only). */
	if (xen_backend_pick(conf.uri, NULL, &backend, &why) == -1) {
		log_warnx("%s", why);
		free(why);
		conf_clear(&conf);
		return 1;
	}
	vm_backend_set(backend);
	if (backend->virt == VM_VIRT_XEN) {
		host.accel = "xen";
		if (!xen_dom0_running(NULL))
			log_warnx("%s: no Xen dom0 runs here (/proc/xen is "
				  "missing): VMs will not start",
			    conf.uri);
	} else {
		accel = conf.accel;
		if (accel == ACCEL_AUTO)
			accel = kvmprobe_run("/dev/kvm", 2000, &why);
		if (accel == ACCEL_KVM) {
			host.accel = "kvm";
		} else {
			host.accel = "tcg";
			host.accel_why = why != NULL
			    ? why
			    : "accel = tcg in the configuration";
			log_warnx("KVM not usable (%s): VMs run under TCG "
				  "emulation, much slower",
			    host.accel_why);
		}
	}
	if (sysinfo(&si) == 0)
		host.ram_total_mb =
		    (unsigned long)(si.totalram / 1048576 * si.mem_unit);
	/* VM budget: host RAM - Guardian's reserve - a system buffer. */
	host.ram_budget_mb = conf.ram_budget_mb ? conf.ram_budget_mb
	    : host.ram_total_mb > GUARDIAN_RESERVE_MB + SYSTEM_BUFFER_MB
	    ? host.ram_total_mb - GUARDIAN_RESERVE_MB - SYSTEM_BUFFER_MB
	    : 0;
	host.xen = WITH_XEN;
	host.backend = vm_backend()->name;

	if (audit_open(conf.audit_log) < 0)
		return 1;
	state_init(&conf, &host);
	if (virt_init(&conf) < 0)
		return 1;
	/* Deploys: the catalog, the address reservations, the job runner. */
	catalog = catalog_load(conf.templates_dir,
	    strcmp(host.arch, "aarch64") == 0 ? VM_ARCH_AARCH64
					      : VM_ARCH_X86_64,
	    conf.appliance_dir);
	xasprintf(&state_file, "%s/reservations.json", conf.data_dir);
	memset(&rp, 0, sizeof(rp));
	rp.block = conf.reserve_block;
	rp.subnet = conf.reserve_subnet;
	rp.dhcp_pool = conf.dhcp_pool;
	rp.state_file = state_file;
	rp.dhcp_dir = conf.reservations_dir;
	rp.hosts_dir = conf.hosts_dir;
	rp.domain = conf.domain;
	if ((reserve = reserve_open(&rp, &rerr)) == NULL) {
		log_warnx("reservations: %s; deploys cannot reserve addresses",
		    rerr ? rerr : "cannot open");
		free(rerr);
	}
	free(state_file);
	if (deploy_init(&conf, &host, catalog, reserve) < 0)
		log_warnx("deploys are not available");
	/* USB passthrough: known devices, hotplug, re-attach. */
	devices_init(&conf);
	/* "preparing…" until a VM's web UI answers. */
	webprobe_start();
	if (http_start(&conf) < 0) {
		/* (a bad console certificate, a port in use): undo the rest */
		rc = 1;
		goto stop;
	}
	if (notify_manager("READY=1\nSTATUS=serving") < 0)
		log_warn("cannot tell the service manager we are ready "
			 "(NOTIFY_SOCKET)");
	log_info(
	    "vmmod %s ready (%s, %s)", VMMOD_VERSION, host.arch, host.accel);

	for (;;) {
		sig = sigtimedwait(&set, NULL, ticking ? &trim_tick : NULL);
		if (sig == -1) {
			if (errno != EAGAIN)
				continue;
			/* a tick: trim once the requests have stopped */
			api_burst_end();
			if (api_requests_total() == seen) {
				malloc_trim(0);
				ticking = false;
			}
			seen = api_requests_total();
			continue;
		}
		if (sig == SIGUSR2) {
			if (!ticking)
				seen = api_requests_total();
			ticking = true;
			continue;
		}
		if (sig != SIGHUP)
			break;
		notify_manager("RELOADING=1");
		if (load_conf(&next, file, explicit_file, &cli) == 0) {
			if (debug)
				next.debug = 1;
			if ((restart = conf_keep_running(&next, &conf)) !=
			    NULL) {
				log_warnx("reload: %s changed; that takes "
					  "effect at the next restart "
					  "(systemctl restart vmmod)",
				    restart);
				free(restart);
			}
			log_setverbose(next.debug);
			audit_close();
			audit_open(next.audit_log);
			state_init(&next, &host);
			reload_catalog(&next, &catalogs, &ncatalogs);
			http_token_reload(next.token_file);
			http_origins_reload(next.allowed_origins);
			console_origins_reload(next.allowed_origins);
			conf_clear(&conf);
			conf = next;
			log_info("configuration reloaded");
		} else
			log_warnx(
			    "reload failed; keeping the old configuration");
		notify_manager("READY=1");
	}
	log_info("stopping on signal %d", sig);
	notify_manager("STOPPING=1");
	http_stop();
stop:
	deploy_shutdown();
	devices_shutdown();
	virt_shutdown();
	webprobe_stop();
	reserve_close(reserve);
	catalog_free(catalog);
	for (i = 0; i < ncatalogs; i++)
		catalog_free(catalogs[i]);
	free(catalogs);
	state_free();
	audit_close();
	conf_clear(&conf);
	free(why);
	return rc;
}
