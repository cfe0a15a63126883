/* evgen: workload generator for scripts/bench (compiled with gcc at bench time).
 *
 *   evgen tree ROOT NTOP NSUB NFILES [SIZE]
 *       ROOT/tNNN/ (NTOP of them), each with NSUB subdirectories sNNN/, and NFILES files
 *       fNNNNN in every one of those directories (SIZE bytes each, default 0).
 *   evgen touch ROOT NTOP NFILES NITER
 *       NITER times: open an existing file O_WRONLY, write one byte, close it.  Iteration i
 *       uses ROOT/t<i % NTOP>/f<(i / NTOP) % NFILES>, so consecutive events never name the
 *       same file (the kernel would merge them).  Each iteration yields MODIFY and
 *       CLOSE_WRITE: 2 events.
 *   evgen lines N NDISTINCT PREFIX
 *       N inotifywait-style event lines "PREFIX/tDD/ CLOSE_WRITE,CLOSE fNNNNN" on stdout,
 *       naming NDISTINCT distinct paths in a scrambled order.
 *   evgen edits FILE N INTERVAL_MS
 *       N edits of FILE (open O_TRUNC, write "edit K\n", close), INTERVAL_MS apart on an
 *       absolute monotonic schedule.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

static long num(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "evgen: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

static void mkfiles(const char *dir, long nfiles, const char *buf, long size) {
    char p[4096];
    for (long f = 0; f < nfiles; f++) {
        snprintf(p, sizeof p, "%s/f%05ld", dir, f);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die(p);
        if (size > 0 && write(fd, buf, (size_t)size) != size) die(p);
        close(fd);
    }
}

static int tree(const char *root, long ntop, long nsub, long nfiles, long size) {
    char *buf = calloc(1, (size_t)size + 1);
    char d[4096], s[4096];
    memset(buf, 'x', (size_t)size);
    if (mkdir(root, 0755) < 0 && errno != EEXIST) die(root);
    for (long t = 0; t < ntop; t++) {
        snprintf(d, sizeof d, "%s/t%03ld", root, t);
        if (mkdir(d, 0755) < 0 && errno != EEXIST) die(d);
        mkfiles(d, nfiles, buf, size);
        for (long u = 0; u < nsub; u++) {
            snprintf(s, sizeof s, "%s/s%03ld", d, u);
            if (mkdir(s, 0755) < 0 && errno != EEXIST) die(s);
            mkfiles(s, nfiles, buf, size);
        }
    }
    free(buf);
    return 0;
}

static int touch(const char *root, long ntop, long nfiles, long niter) {
    char p[4096];
    for (long i = 0; i < niter; i++) {
        snprintf(p, sizeof p, "%s/t%03ld/f%05ld", root, i % ntop, (i / ntop) % nfiles);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0) die(p);
        if (pwrite(fd, "y", 1, 0) != 1) die(p);
        close(fd);
    }
    return 0;
}

static int lines(long n, long ndistinct, const char *prefix) {
    static char obuf[1 << 20];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    unsigned long long x = 88172645463325252ULL;
    for (long i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17; /* xorshift64 */
        long k = (long)(x % (unsigned long long)ndistinct);
        printf("%s/t%02ld/ CLOSE_WRITE,CLOSE f%06ld\n", prefix, k % 100, k);
    }
    if (fflush(stdout) != 0) die("stdout");
    return 0;
}

static int edits(const char *file, long n, long interval_ms) {
    struct timespec next;
    char line[64];
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long k = 1; k <= n; k++) {
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die(file);
        int len = snprintf(line, sizeof line, "edit %ld\n", k);
        if (write(fd, line, (size_t)len) != len) die(file);
        close(fd);
        if (k == n) break;
        next.tv_nsec += interval_ms * 1000000L;
        while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {}
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 6 && argc <= 7 && strcmp(argv[1], "tree") == 0)
        return tree(argv[2], num(argv[3]), num(argv[4]), num(argv[5]), argc == 7 ? num(argv[6]) : 0);
    if (argc == 6 && strcmp(argv[1], "touch") == 0)
        return touch(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
    if (argc == 5 && strcmp(argv[1], "lines") == 0)
        return lines(num(argv[2]), num(argv[3]) ? num(argv[3]) : 1, argv[4]);
    if (argc == 5 && strcmp(argv[1], "edits") == 0)
        return edits(argv[2], num(argv[3]), num(argv[4]));
    fprintf(stderr, "usage: evgen tree ROOT NTOP NSUB NFILES [SIZE] | touch ROOT NTOP NFILES NITER |\n"
                    "       lines N NDISTINCT PREFIX | edits FILE N INTERVAL_MS\n");
    return 2;
}
