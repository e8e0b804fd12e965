/*
 * Does KVM really work here?  /dev/kvm existing proves little: under nested
 * virtualization KVM_RUN can block forever, and a daemon thread stuck in it
 * cannot be saved.  So a forked child builds the smallest possible guest
 * (one page of memory, a few instructions, one vCPU) and runs it, reporting
 * each step over a pipe; the parent waits at most timeout_ms and SIGKILLs
 * the child otherwise.  KVM counts as working only when the guest's own
 * instruction reaches us: on x86 an `out` to a port in real mode (KVM_EXIT_IO
 * with the value written), on aarch64 a store to an address outside guest
 * memory (KVM_EXIT_MMIO; there is no HLT exit there).
 *
 * This is the one file that knows the per-architecture register setup; it
 * holds the single #if on the target architecture.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vmmod.h"

/* Steps the child reports; the last one received tells how far it got. */
enum probe_step {
	PS_OPEN,
	PS_API,
	PS_CREATE_VM,
	PS_MEMORY,
	PS_CREATE_VCPU,
	PS_RUN_MAP,
	PS_REGS,
	PS_RUN,
	PS_EXIT,
	PS_OK
};

static const char *const probe_step_names[] = {
    [PS_OPEN] = "open",
    [PS_API] = "KVM_GET_API_VERSION",
    [PS_CREATE_VM] = "KVM_CREATE_VM",
    [PS_MEMORY] = "KVM_SET_USER_MEMORY_REGION",
    [PS_CREATE_VCPU] = "KVM_CREATE_VCPU",
    [PS_RUN_MAP] = "mapping kvm_run",
    [PS_REGS] = "setting vCPU registers",
    [PS_RUN] = "KVM_RUN",
    [PS_EXIT] = "guest exit",
    [PS_OK] = "ok",
};

/* One record on the pipe; err is an errno, or 0 while a step is running. */
struct probe_msg {
	int step;
	int err;
	uint32_t exit_reason;
};

#define PROBE_REAP_MS 1000

#if defined(__x86_64__)
/* Real mode at CS:IP = 0x1000:0000: mov al, 0x42; out 0x10, al; hlt */
#define PROBE_GPA 0x10000
static const uint8_t probe_code[] = {0xb0, 0x42, 0xe6, 0x10, 0xf4};

static int
kvmprobe_regs(int vmfd, int vcpufd)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpufd, KVM_GET_SREGS, &sregs) == -1)
		return -1;
	sregs.cs.base = PROBE_GPA;
	sregs.cs.selector = PROBE_GPA >> 4;
	if (ioctl(vcpufd, KVM_SET_SREGS, &sregs) == -1)
		return -1;
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rflags = 0x2;
	return ioctl(vcpufd, KVM_SET_REGS, &regs);
}

static bool
kvmprobe_exit_ok(const struct kvm_run *run)
{
	const uint8_t *data;

	if (run->exit_reason != KVM_EXIT_IO ||
	    run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0x10 ||
	    run->io.size != 1)
		return false;
	data = (const uint8_t *)run + run->io.data_offset;
	return *data == 0x42;
}
#elif defined(__aarch64__)
/*
 * At PC = 0x40000000: mov x0, #0x10000000; mov x1, #0x4b56;
 * str w1, [x0]; b .   (0x10000000 is outside the one memory slot)
 */
#define PROBE_GPA 0x40000000
#define PROBE_MMIO 0x10000000
static const uint32_t probe_code[] = {
    0xd2a20000, 0xd2896ac1, 0xb9000001, 0x14000000};

static int
kvmprobe_regs(int vmfd, int vcpufd)
{
	struct kvm_vcpu_init init;
	struct kvm_one_reg reg;
	uint64_t pc = PROBE_GPA;

	memset(&init, 0, sizeof(init));
	if (ioctl(vmfd, KVM_ARM_PREFERRED_TARGET, &init) == -1)
		return -1;
	if (ioctl(vcpufd, KVM_ARM_VCPU_INIT, &init) == -1)
		return -1;
	reg.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
	    KVM_REG_ARM_CORE_REG(regs.pc);
	reg.addr = (uint64_t)(uintptr_t)&pc;
	return ioctl(vcpufd, KVM_SET_ONE_REG, &reg);
}

static bool
kvmprobe_exit_ok(const struct kvm_run *run)
{
	uint32_t v;

	if (run->exit_reason != KVM_EXIT_MMIO || !run->mmio.is_write ||
	    run->mmio.phys_addr != PROBE_MMIO || run->mmio.len != 4)
		return false;
	memcpy(&v, run->mmio.data, sizeof(v));
	return v == 0x4b56;
}
#else
#define PROBE_UNSUPPORTED 1
#endif

#ifndef PROBE_UNSUPPORTED
static void
kvmprobe_send(int fd, int step, int err, uint32_t exit_reason)
{
	struct probe_msg m = {step, err, exit_reason};

	/* a record is far below PIPE_BUF, so the write is atomic */
	if (write(fd, &m, sizeof(m)) != sizeof(m))
		_exit(2); /* the parent is gone or gave up */
}

/* The child: only system calls from here on, then _exit. */
static void __attribute__((noreturn))
kvmprobe_child(const char *devpath, int fd)
{
	struct kvm_userspace_memory_region region;
	struct kvm_run *run;
	long pagesz = sysconf(_SC_PAGESIZE);
	void *mem;
	int kvm, vm, vcpu, runsz;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((kvm = open(devpath, O_RDWR | O_CLOEXEC)) == -1)
		goto fail_open;
	errno = 0;
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		kvmprobe_send(fd, PS_API, errno != 0 ? errno : EPROTO, 0);
		_exit(1);
	}
	if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) == -1) {
		kvmprobe_send(fd, PS_CREATE_VM, errno, 0);
		_exit(1);
	}
	mem = mmap(NULL, pagesz, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		kvmprobe_send(fd, PS_MEMORY, errno, 0);
		_exit(1);
	}
	memcpy(mem, probe_code, sizeof(probe_code));
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = PROBE_GPA;
	region.memory_size = pagesz;
	region.userspace_addr = (uint64_t)(uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) == -1) {
		kvmprobe_send(fd, PS_MEMORY, errno, 0);
		_exit(1);
	}
	if ((vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) == -1) {
		kvmprobe_send(fd, PS_CREATE_VCPU, errno, 0);
		_exit(1);
	}
	runsz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (runsz < (int)sizeof(*run) ||
	    (run = mmap(NULL, runsz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu,
		 0)) == MAP_FAILED) {
		kvmprobe_send(fd, PS_RUN_MAP, runsz == -1 ? errno : EINVAL, 0);
		_exit(1);
	}
	if (kvmprobe_regs(vm, vcpu) == -1) {
		kvmprobe_send(fd, PS_REGS, errno, 0);
		_exit(1);
	}
	/* "running": if nothing follows, KVM_RUN is what hung */
	kvmprobe_send(fd, PS_RUN, 0, 0);
	if (ioctl(vcpu, KVM_RUN, 0) == -1) {
		kvmprobe_send(fd, PS_RUN, errno, 0);
		_exit(1);
	}
	if (!kvmprobe_exit_ok(run)) {
		kvmprobe_send(fd, PS_EXIT, 0, run->exit_reason);
		_exit(1);
	}
	kvmprobe_send(fd, PS_OK, 0, 0);
	_exit(0);
fail_open:
	kvmprobe_send(fd, PS_OPEN, errno, 0);
	_exit(1);
}
#endif

static long
kvmprobe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/*
 * Kills and reaps the child without ever blocking for long (after an answer
 * it has exited already: the kill then hits our own zombie, no one else).
 */
static void
kvmprobe_reap(pid_t pid)
{
	long deadline = kvmprobe_now_ms() + PROBE_REAP_MS;
	struct timespec tick = {0, 10 * 1000 * 1000};
	pid_t r;

	kill(pid, SIGKILL);
	while ((r = waitpid(pid, NULL, WNOHANG)) == 0 ||
	    (r == -1 && errno == EINTR)) {
		if (kvmprobe_now_ms() >= deadline) {
			/* XXX stuck in uninterruptible sleep; stays a zombie */
			log_warnx("%s: probe child %ld did not exit", __func__,
			    (long)pid);
			return;
		}
		nanosleep(&tick, NULL);
	}
}

static char *
kvmprobe_reason(const char *devpath, const struct probe_msg *m, bool got,
    bool timed_out, int timeout_ms)
{
	const char *step;
	char *why;

	if (!got) {
		if (timed_out)
			xasprintf(&why,
			    "KVM probe child did not answer within "
			    "%d ms",
			    timeout_ms);
		else
			xasprintf(
			    &why, "KVM probe child died without an answer");
		return why;
	}
	step =
	    m->step >= 0 && m->step <= PS_OK ? probe_step_names[m->step] : "?";
	if (m->step == PS_RUN && m->err == 0 && timed_out)
		xasprintf(&why,
		    "KVM_RUN did not return within %d ms "
		    "(nested virtualization?)",
		    timeout_ms);
	else if (timed_out)
		xasprintf(
		    &why, "KVM probe stuck after %s (%d ms)", step, timeout_ms);
	else if (m->step == PS_OPEN && m->err == ENOENT)
		xasprintf(&why, "%s missing", devpath);
	else if (m->step == PS_OPEN && m->err == EACCES)
		xasprintf(
		    &why, "%s: permission denied (not in group kvm?)", devpath);
	else if (m->step == PS_EXIT)
		xasprintf(&why,
		    "KVM guest stopped with exit reason %u, not "
		    "at the probe instruction",
		    m->exit_reason);
	else if (m->err != 0)
		xasprintf(&why, "%s on %s failed: %s", step, devpath,
		    strerror(m->err));
	else
		xasprintf(&why, "KVM probe child exited during %s", step);
	return why;
}

enum accel_mode
kvmprobe_run(const char *devpath, int timeout_ms, char **whyp)
{
	struct probe_msg last, m;
	struct pollfd pfd;
	char *why = NULL;
	long deadline, left;
	size_t have = 0;
	ssize_t n;
	pid_t pid;
	bool got = false, timed_out = false;
	int p[2], rc;

	if (whyp != NULL)
		*whyp = NULL;
#ifdef PROBE_UNSUPPORTED
	why = xstrdup("no KVM probe for this architecture");
	goto done;
#else
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("%s: pipe2", __func__);
		why = xstrdup("KVM probe could not start (pipe)");
		goto done;
	}
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", __func__);
		close(p[0]);
		close(p[1]);
		why = xstrdup("KVM probe could not start (fork)");
		goto done;
	}
	if (pid == 0) {
		close(p[0]);
		kvmprobe_child(devpath, p[1]);
	}
	close(p[1]);

	memset(&last, 0, sizeof(last));
	deadline = kvmprobe_now_ms() + timeout_ms;
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		if ((left = deadline - kvmprobe_now_ms()) <= 0) {
			timed_out = true;
			break;
		}
		rc = poll(&pfd, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1) {
			log_warn("%s: poll", __func__);
			break;
		}
		if (rc == 0) {
			timed_out = true;
			break;
		}
		n = read(p[0], (char *)&m + have, sizeof(m) - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EOF: the child is done */
		if ((have += n) == sizeof(m)) {
			last = m;
			got = true;
			have = 0;
		}
	}
	close(p[0]);
	kvmprobe_reap(pid);

	if (got && last.step == PS_OK)
		return ACCEL_KVM;
	why = kvmprobe_reason(devpath, &last, got, timed_out, timeout_ms);
#endif
done:
	log_debug("%s: %s: %s", __func__, devpath, why);
	if (whyp != NULL)
		*whyp = why;
	else
		free(why);
	return ACCEL_TCG;
}
