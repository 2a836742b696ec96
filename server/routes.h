/*
 * The route table (routes.c): every path the server answers, its methods, its flags, and what
 * answers it. Routes that take a body answer through a codec (proto/codec.h) of their kind; the
 * others through their own answer function.
 */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include <stdbool.h>

#include "codec.h"
#include "metrics.h"
#include "respond.h"

typedef enum srv_route_id {
    SRV_ROUTE_NONE = 0,       /* unknown path: 404 */
    SRV_ROUTE_QDQ,            /* POST /quantize-dequantize */
    SRV_ROUTE_HEALTHZ,        /* GET /healthz */
    SRV_ROUTE_READYZ,         /* GET /readyz */
    SRV_ROUTE_METRICS,        /* GET /metrics */
    SRV_ROUTE_V2_INFER,       /* POST /v2/models/quantize_and_dequantize_v2[/versions/1]/infer */
    SRV_ROUTE_V2_SERVER,      /* GET /v2 */
    SRV_ROUTE_V2_LIVE,        /* GET /v2/health/live */
    SRV_ROUTE_V2_READY,       /* GET /v2/health/ready */
    SRV_ROUTE_V2_MODEL,       /* GET /v2/models/quantize_and_dequantize_v2[/versions/1] */
    SRV_ROUTE_V2_MODEL_READY, /* GET /v2/models/quantize_and_dequantize_v2[/versions/1]/ready */
    SRV_ROUTE_V2_NO_MODEL,    /* anything else under /v2/models/: 404 naming the model */
    SRV_ROUTES                /* the number of routes */
} srv_route_id;

/* What the server knows that an answer may need. */
typedef struct srv_view {
    bool draining;
    srv_gauges gauges;
} srv_view;

enum {
    SRV_ROUTE_OPEN = 1u << 0,     /* no bearer token needed, answered while overloaded */
    SRV_ROUTE_BODY = 1u << 1,     /* takes a body, through a codec of the route's kind */
    SRV_ROUTE_ANYMETHOD = 1u << 2 /* answers every method (the not-found entries) */
};

typedef struct srv_route {
    const char *path;
    srv_route_id id;
    const char *allow; /* the methods it takes, for 405's Allow header */
    const char *name;  /* for logs and metrics */
    unsigned flags;
    proto_kind kind;   /* SRV_ROUTE_BODY: the codecs it takes */
    /* Without SRV_ROUTE_BODY: fills the answer (method and path: the request's). */
    void (*answer)(const srv_view *v, const char *method, const char *path, srv_answer *ans);
} srv_route;

/* The route for a path (never NULL: the "not found" entry when nothing matches). */
const srv_route *srv_route_find(const char *path);
/* Whether the route accepts the method. */
bool srv_route_allows(const srv_route *r, const char *method);
/* Every route's name, indexed by srv_route_id (SRV_ROUTES of them). */
const char *const *srv_route_names(void);

#endif
