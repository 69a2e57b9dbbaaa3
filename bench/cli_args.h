/* Command-line helpers shared by the benchmark programs. */
#ifndef DSR_BENCH_CLI_ARGS_H
#define DSR_BENCH_CLI_ARGS_H

/* Parses s as a whole decimal integer in [lo, hi] into *out; on failure
 * prints "<prog>: <flag> wants an integer in [lo, hi]" and returns -1. */
int bench_parse_long(const char *prog, const char *s, const char *flag, long lo, long hi, long *out);

/* bench_parse_long for an int flag. */
int bench_parse_int(const char *prog, const char *s, const char *flag, int lo, int hi, int *out);

#endif
