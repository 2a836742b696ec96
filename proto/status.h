/*
 * Status codes: core's (QDQ_OK, QDQ_EINVAL in qdq.h) and the rest, every one in one table with
 * what it becomes on each transport. A layer that finds a failure records it with qdq_fail
 * (qdq.h: the first failure wins) and the transport converts the code with the functions below.
 * docs/architecture.md describes the error model.
 */
#ifndef PROTO_STATUS_H
#define PROTO_STATUS_H

#include "qdq.h"

/* Status codes beyond core's QDQ_OK (0) and QDQ_EINVAL (1). */
enum {
    PROTO_ETOOBIG = 2,    /* over a configured limit */
    PROTO_EMEDIA = 3,     /* unsupported Content-Type, Content-Encoding or npy descr */
    PROTO_ENOMEM = 4,     /* allocation failed */
    PROTO_EAGAIN = 5,     /* incremental decoder: more bytes needed (never an answer) */
    PROTO_ENOTFOUND = 6,  /* no such route, model or version */
    PROTO_EMETHOD = 7,    /* the route does not take the method */
    PROTO_ELENGTH = 8,    /* a length is required and missing */
    PROTO_EAUTH = 9,      /* missing or wrong bearer token */
    PROTO_EBUSY = 10,     /* overloaded or shutting down: try again */
    PROTO_ESPACE = 11,    /* the spool's file system is full */
    PROTO_EINTERNAL = 12, /* a bug */
    PROTO_ECLOSED = 13,   /* the client went away before the answer (logs and metrics only) */
    PROTO_ESAFETENSORS = 14, /* a safetensors file that breaks the format's rules */
    PROTO_NSTATUS
};

/*
 * The table: code, HTTP status, the word of error bodies' "code" (KServe's and gRPC's names),
 * and the gRPC status number.
 */
#define PROTO_STATUS_TABLE(X)                                                                  \
    X(QDQ_OK, 200, "OK", 0)                                                                    \
    X(QDQ_EINVAL, 400, "INVALID_ARGUMENT", 3)                                                  \
    X(PROTO_ETOOBIG, 413, "RESOURCE_EXHAUSTED", 8)                                             \
    X(PROTO_EMEDIA, 415, "UNSUPPORTED_MEDIA_TYPE", 3)                                          \
    X(PROTO_ENOMEM, 503, "UNAVAILABLE", 14)                                                    \
    X(PROTO_EAGAIN, 500, "INTERNAL", 13)                                                       \
    X(PROTO_ENOTFOUND, 404, "NOT_FOUND", 5)                                                    \
    X(PROTO_EMETHOD, 405, "METHOD_NOT_ALLOWED", 12)                                            \
    X(PROTO_ELENGTH, 411, "LENGTH_REQUIRED", 3)                                                \
    X(PROTO_EAUTH, 401, "UNAUTHENTICATED", 16)                                                 \
    X(PROTO_EBUSY, 503, "UNAVAILABLE", 14)                                                     \
    X(PROTO_ESPACE, 507, "INSUFFICIENT_STORAGE", 8)                                            \
    X(PROTO_EINTERNAL, 500, "INTERNAL", 13)                                                    \
    X(PROTO_ECLOSED, 499, "CANCELLED", 1)                                                      \
    X(PROTO_ESAFETENSORS, 400, "INVALID_SAFETENSORS", 3)

/* The HTTP status of a code (500 for a code not in the table). */
int proto_status_http(int code);
/* The word for a code, e.g. "INVALID_ARGUMENT" ("INTERNAL" for a code not in the table). */
const char *proto_status_word(int code);
/* The gRPC status number of a code (13, INTERNAL, for a code not in the table). */
int proto_status_grpc(int code);
/* Whether an answer with this code asks the client to come back later (Retry-After). */
static inline bool proto_status_retry(int code)
{
    return code == PROTO_ENOMEM || code == PROTO_EBUSY;
}

#endif
