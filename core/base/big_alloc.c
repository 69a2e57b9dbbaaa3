#include "base/big_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *big_alloc(size_t bytes) {
    if (bytes < HUGE_PAGE) /* a huge page would waste most of itself */
        return aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64);
    if (bytes > SIZE_MAX - HUGE_PAGE) return NULL;
    size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; /* aligned_alloc: a multiple */
    void *p = aligned_alloc(HUGE_PAGE, rounded);
#ifdef MADV_HUGEPAGE
    /* advice only: a kernel without THP (or "never") leaves 4 KiB pages */
    if (p) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

void *big_calloc(size_t bytes) {
    void *p = big_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}
