/* big_alloc (base/big_alloc.h): the weight arenas' and KV caches' allocator.
 *
 *   sizes     every size from 0 to past a few huge pages gives a writable
 *             block aligned to 64 bytes (2 MiB from 2 MiB up), and
 *             big_calloc's is zero;
 *   advised   a block of 2 MiB or more lies in a mapping the kernel marks
 *             "hg" (MADV_HUGEPAGE) in /proc/self/smaps, so it can be backed
 *             by huge pages whenever THP is not "never". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "base/big_alloc.h"

#define MIB ((size_t)1 << 20)

static void test_sizes(struct th *t) {
    const size_t sizes[] = {0, 1, 63, 100, 4096, 2 * MIB - 1, 2 * MIB, 5 * MIB + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *a = big_alloc(n), *z = big_calloc(n);
        TH_CHECK(t, a && z, "size %zu: allocated", n);
        if (!a || !z) {
            free(a);
            free(z);
            continue;
        }
        size_t align = n >= 2 * MIB ? 2 * MIB : 64;
        TH_CHECK(t, (uintptr_t)a % align == 0 && (uintptr_t)z % align == 0, "size %zu: aligned to %zu", n, align);
        size_t nonzero = 0;
        for (size_t j = 0; j < n; j++) nonzero += z[j] != 0;
        TH_CHECK(t, nonzero == 0, "size %zu: big_calloc zeroed (%zu bytes not)", n, nonzero);
        memset(a, 0xA5, n); /* the whole block is ours (ASan checks the bounds) */
        free(a);
        free(z);
    }
}

/* The VmFlags of the smaps entry holding address p, or "" if none. */
static void vm_flags_of(const void *p, char *flags, size_t cap) {
    flags[0] = '\0';
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[512];
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static void test_advised(struct th *t) {
    char *a = big_alloc(8 * MIB);
    TH_CHECK(t, a != NULL, "8 MiB allocated");
    if (!a) return;
    memset(a, 1, 8 * MIB);
    char flags[512];
    vm_flags_of(a + 4 * MIB, flags, sizeof flags);
    TH_CHECK(t, flags[0] != '\0', "the block's mapping is in /proc/self/smaps");
    TH_CHECK(t, strstr(flags, " hg") != NULL, "the mapping is advised MADV_HUGEPAGE (VmFlags:%s)", flags);
    free(a);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "sizes", test_sizes);
    th_run(&t, "advised", test_advised);
    return th_finish(&t, "test_big_alloc");
}
