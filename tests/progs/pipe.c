/* Pipes: bytes in flight survive, in order; the buffer size and O_NONBLOCK survive; a pipe shared by a
 * parent and its child still connects them, and the reader sees end of file once the child, its only
 * writer, is gone (nobody else, rcr included, holds the write end). */
#include "common.h"
#include <sys/wait.h>

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	int p1[2], p2[2];
	SETUP(pipe(p1) == 0 && pipe(p2) == 0, "pipe");
	SETUP(fcntl(p1[1], F_SETPIPE_SZ, 128 * 1024) >= 128 * 1024, "F_SETPIPE_SZ");
	SETUP(fcntl(p1[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	const char *flying = "in-flight-123";
	SETUP(write(p1[1], flying, strlen(flying)) == (ssize_t)strlen(flying), "write p1");
	pid_t kid = fork();
	SETUP(kid >= 0, "fork");
	if (kid == 0) {
		close(p2[0]);
		close(p1[0]);
		close(p1[1]);
		SETUP(write(p2[1], "child-msg;", 10) == 10, "child write");
		signal(SIGTERM, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		sigprocmask(SIG_BLOCK, &s, NULL);
		int sig;
		sigwait(&s, &sig);
		_exit(write(p2[1], "after", 5) == 5 ? 0 : 1);
	}
	close(p2[1]);
	out_line("proc child %d", kid);
	ready();
	wait_term();

	char buf[256] = { 0 };
	ssize_t n = read(p1[0], buf, sizeof(buf) - 1);
	CHECK(n == (ssize_t)strlen(flying) && memcmp(buf, flying, n) == 0, "p1: read %zd bytes '%s', expected '%s'", n, n > 0 ? buf : "", flying);
	n = read(p1[0], buf, sizeof(buf));
	CHECK(n < 0 && errno == EAGAIN, "p1 read end: expected EAGAIN (O_NONBLOCK, empty), got %zd", n);
	CHECK(fcntl(p1[1], F_GETPIPE_SZ) == 128 * 1024, "p1 size: %d", fcntl(p1[1], F_GETPIPE_SZ));
	CHECK(write(p1[1], "x", 1) == 1 && read(p1[0], buf, 1) == 1 && buf[0] == 'x', "p1 still works both ways");
	kill(kid, SIGUSR1);
	char all[64] = { 0 };
	size_t got = 0;
	while (got < sizeof(all) - 1) {
		ssize_t r = read(p2[0], all + got, sizeof(all) - 1 - got);
		if (r <= 0)
			break; /* 0: end of file, once the child exited */
		got += r;
	}
	CHECK(strcmp(all, "child-msg;after") == 0, "p2: read '%s', expected 'child-msg;after' then end of file", all);
	int st;
	CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	return finish();
}
