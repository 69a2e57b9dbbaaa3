/* The release and source commit this build came from: `--version` of every
 * program and dsrd's dsr_build_info metric.  The Makefile passes both to
 * version.c only (DSR_VERSION from the VERSION file, DSR_COMMIT from git, or
 * "unknown" outside a checkout), so a new commit recompiles one file. */
#ifndef DSR_VERSION_H
#define DSR_VERSION_H

const char *dsr_version(void);
const char *dsr_commit(void);

#endif
