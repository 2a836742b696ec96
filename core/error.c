/* Failures: the one way every layer records what went wrong (qdq.h). */
#include <stdarg.h>
#include <stdio.h>

#include "qdq.h"

int qdq_vfail(qdq_error *err, int code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    if (err->code == QDQ_OK) {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        err->code = code;
    }
    return err->code;
}

int qdq_fail(qdq_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = qdq_vfail(err, code, fmt, ap);
    va_end(ap);
    return rc;
}
