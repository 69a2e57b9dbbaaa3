#include "base/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_open_regular(const char *path, size_t max_bytes, size_t *size, struct dsr_err *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        dsr_errf(err, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    const char *bad = fstat(fd, &sb) != 0    ? "cannot be examined"
                      : !S_ISREG(sb.st_mode) ? "is not a regular file"
                                             : NULL;
    if (bad) {
        close(fd);
        dsr_errf(err, "%s %s", path, bad);
        return -1;
    }
    if (max_bytes && (unsigned long long)sb.st_size > max_bytes) {
        close(fd);
        dsr_errf(err, "%s is %lld bytes, over the limit of %zu", path, (long long)sb.st_size, max_bytes);
        return -1;
    }
    *size = (size_t)sb.st_size;
    return fd;
}

int file_read_regular(const char *path, size_t max_bytes, char **data, size_t *len, struct dsr_err *err) {
    *data = NULL;
    size_t size;
    int fd = file_open_regular(path, max_bytes, &size, err);
    if (fd < 0) return -1;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return dsr_errf(err, "%s: out of memory for %zu bytes", path, size);
    }
    /* the size from fstat: a file growing meanwhile is read as it was */
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    int saved = errno;
    close(fd);
    if (got < size) {
        free(buf);
        return dsr_errf(err, "%s: read %zu of %zu bytes (%s)", path, got, size, strerror(saved));
    }
    buf[size] = 0;
    *data = buf;
    *len = size;
    return 0;
}
