#include "cli_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int bench_parse_long(const char *prog, const char *s, const char *flag, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants an integer in [%ld, %ld], got \"%s\"\n", prog, flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int bench_parse_int(const char *prog, const char *s, const char *flag, int lo, int hi, int *out) {
    long v;
    if (bench_parse_long(prog, s, flag, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}
