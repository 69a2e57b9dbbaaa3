/* proto/openapi.yaml, compiled into dsrd (the Makefile generates
 * BUILD/gen/openapi_doc.c from it) and served at GET /openapi.yaml. */
#ifndef DSRD_OPENAPI_DOC_H
#define DSRD_OPENAPI_DOC_H

extern const char dsr_openapi_yaml[]; /* NUL-terminated */

#endif
