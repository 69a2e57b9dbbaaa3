#include "base/version.h"

#ifndef DSR_VERSION
#define DSR_VERSION "unknown"
#endif
#ifndef DSR_COMMIT
#define DSR_COMMIT "unknown"
#endif

const char *dsr_version(void) { return DSR_VERSION; }
const char *dsr_commit(void) { return DSR_COMMIT; }
