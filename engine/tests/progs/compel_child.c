/* Test child for engine/tests/compel.rs. Usage: compel_child MODE [ARG]
 * Prints "ready ..." on stdout once set up, then blocks in the mode's system call.
 * Any unexpected EINTR prints "eintr" and exits 3, so a broken syscall restart fails tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; usr1_count++; }
static void on_usr2(int sig) { (void)sig; }

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static long ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Reads commands from stdin (a pipe) and answers them, until EOF. */
static void serve(void) {
    char line[128];
    for (;;) {
        ssize_t n = read(0, line, sizeof(line) - 1);
        if (n < 0) {
            say("%s\n", errno == EINTR ? "eintr" : "readerr");
            exit(3);
        }
        if (n == 0)
            exit(0);
        line[n] = 0;
        if (!strncmp(line, "ping", 4)) {
            say("pong %d\n", getpid());
        } else if (!strncmp(line, "usr1", 4)) {
            raise(SIGUSR1);
            say("usr1 %d\n", (int)usr1_count);
        } else if (!strncmp(line, "sa", 2)) {
            struct sigaction sa;
            sigaction(SIGUSR1, NULL, &sa);
            say("sa %p %#x\n", (void *)sa.sa_sigaction, (unsigned)sa.sa_flags);
        } else {
            say("unknown\n");
        }
    }
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGUSR1, &sa, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
}

static void mode_handlers(void) {
    static char altstack[65536];
    install_handlers();
    struct itimerval it = {{7, 250000}, {100, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    stack_t st = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};
    sigaltstack(&st, NULL);
    say("ready %p %p %p %p\n", (void *)on_usr1, (void *)on_usr2, (void *)altstack, (void *)&usr1_count);
    serve();
}

static void mode_sigtrap_ign(void) {
    install_handlers();
    signal(SIGTRAP, SIG_IGN);
    say("ready\n");
    serve();
}

static void mode_sleep(long ms) {
    struct timespec t0, req = {ms / 1000, (ms % 1000) * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    say("ready\n");
    if (nanosleep(&req, NULL)) {
        say("%s\n", errno == EINTR ? "eintr" : "sleeperr");
        exit(3);
    }
    say("woke %ld\n", ms_since(&t0));
    serve();
}

static void mode_pause(void) {
    install_handlers();
    say("ready\n");
    syscall(SYS_pause);
    say("pause-returned %d\n", (int)usr1_count);
    serve();
}

static void mode_wait(long ms) {
    pid_t kid = fork();
    if (kid == 0) {
        usleep(ms * 1000);
        _exit(7);
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    say("ready %d\n", kid);
    int status;
    if (waitpid(kid, &status, 0) < 0) {
        say("%s\n", errno == EINTR ? "eintr" : "waiterr");
        exit(3);
    }
    say("reaped %d %ld\n", WEXITSTATUS(status), ms_since(&t0));
    serve();
}

static void mode_xmm(void) {
    unsigned char pat[32], out[32];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2; /* no SA_RESTART: pause returns -EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    for (int i = 0; i < 32; i++)
        pat[i] = 0xa0 + i;
    say("ready\n");
    __asm__ volatile("vmovdqu (%1), %%ymm15\n"
                     "1: mov $34, %%eax\n" /* SYS_pause */
                     "syscall\n"
                     "cmp $-4, %%rax\n" /* -EINTR: a signal arrived */
                     "jne 1b\n"
                     "vmovdqu %%ymm15, (%0)\n"
                     :
                     : "r"(out), "r"(pat)
                     : "rax", "rcx", "r11", "memory", "xmm15");
    say("ymm15");
    for (int i = 0; i < 32; i++)
        say(" %02x", out[i]);
    say("\n");
    serve();
}

static void mode_sigpending(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    say("ready\n");
    serve();
}

static void mode_seccomp(void) {
    struct sock_filter insns[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = 4, .filter = insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
        say("seccomp failed %d\n", errno);
        exit(4);
    }
    say("ready %ld\n", (long)syscall(SYS_getppid));
    serve();
}

static void mode_traceme(void) {
    install_handlers();
    if (ptrace(PTRACE_TRACEME, 0, 0, 0)) {
        say("traceme failed %d\n", errno);
        exit(4);
    }
    raise(SIGSTOP);
    say("ready %d\n", getpid());
    serve();
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    long arg = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(mode, "handlers")) mode_handlers();
    else if (!strcmp(mode, "sigtrap-ign")) mode_sigtrap_ign();
    else if (!strcmp(mode, "sleep")) mode_sleep(arg);
    else if (!strcmp(mode, "pause")) mode_pause();
    else if (!strcmp(mode, "wait")) mode_wait(arg);
    else if (!strcmp(mode, "xmm")) mode_xmm();
    else if (!strcmp(mode, "sigpending")) mode_sigpending();
    else if (!strcmp(mode, "seccomp")) mode_seccomp();
    else if (!strcmp(mode, "traceme")) mode_traceme();
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
