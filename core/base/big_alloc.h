/* Large, long-lived buffers (weight arenas, KV caches) on transparent huge
 * pages where the kernel allows them.
 *
 * A decode step streams every weight matrix once (hundreds of MB) and
 * appends to the KV cache; on 4 KiB pages that is one TLB entry per 4 KiB
 * read and one page fault per 4 KiB first written.  A 2 MiB-aligned block
 * advised MADV_HUGEPAGE (honoured when /sys/kernel/mm/transparent_hugepage/
 * enabled is "always" or "madvise") cuts both by up to 512×.  Where the
 * advice is refused the block is an ordinary allocation.
 *
 * Ownership: the caller frees the block with free(). */
#ifndef DSR_BIG_ALLOC_H
#define DSR_BIG_ALLOC_H

#include <stddef.h>

/* bytes of uninitialised memory aligned to 64 bytes (2 MiB from 2 MiB up),
 * or NULL when out of memory. */
void *big_alloc(size_t bytes);

/* big_alloc, zeroed. */
void *big_calloc(size_t bytes);

#endif
