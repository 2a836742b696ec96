/* The route table: every path the server answers, in one place. */
#include <string.h>

#include "srv.h"

static const srv_route routes[] = {
    { "/quantize-dequantize", SRV_ROUTE_QDQ, "POST", "qdq" },
    { "/healthz", SRV_ROUTE_HEALTHZ, "GET, HEAD", "healthz" },
    { "/readyz", SRV_ROUTE_READYZ, "GET, HEAD", "readyz" },
    { "/metrics", SRV_ROUTE_METRICS, "GET, HEAD", "metrics" },
    { "/v2/models/" PROTO_V2_MODEL_NAME "/infer", SRV_ROUTE_V2_INFER, "POST", "v2_infer" },
    { "/v2/models/" PROTO_V2_MODEL_NAME "/versions/" PROTO_V2_MODEL_VERSION "/infer",
      SRV_ROUTE_V2_INFER, "POST", "v2_infer" },
    { "/v2", SRV_ROUTE_V2_SERVER, "GET, HEAD", "v2_server" },
    { "/v2/health/live", SRV_ROUTE_V2_LIVE, "GET, HEAD", "v2_live" },
    { "/v2/health/ready", SRV_ROUTE_V2_READY, "GET, HEAD", "v2_ready" },
    { "/v2/models/" PROTO_V2_MODEL_NAME, SRV_ROUTE_V2_MODEL, "GET, HEAD", "v2_model" },
    { "/v2/models/" PROTO_V2_MODEL_NAME "/versions/" PROTO_V2_MODEL_VERSION, SRV_ROUTE_V2_MODEL,
      "GET, HEAD", "v2_model" },
    { "/v2/models/" PROTO_V2_MODEL_NAME "/ready", SRV_ROUTE_V2_MODEL_READY, "GET, HEAD",
      "v2_model_ready" },
    { "/v2/models/" PROTO_V2_MODEL_NAME "/versions/" PROTO_V2_MODEL_VERSION "/ready",
      SRV_ROUTE_V2_MODEL_READY, "GET, HEAD", "v2_model_ready" },
};

/* Any other path under /v2/models/ names a model (or version) this server does not have. */
static const srv_route no_model = { "/v2/models/", SRV_ROUTE_V2_NO_MODEL, "", "v2_no_model" };

static const srv_route not_found = { "", SRV_ROUTE_NONE, "", "not_found" };

const srv_route *srv_route_find(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
    if (strncmp(path, no_model.path, strlen(no_model.path)) == 0)
        return &no_model;
    return &not_found;
}

bool srv_route_allows(const srv_route *r, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = r->allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == r->allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

const char *srv_route_name(srv_route_id id)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].id == id)
            return routes[i].name;
    return id == SRV_ROUTE_V2_NO_MODEL ? no_model.name : not_found.name;
}
