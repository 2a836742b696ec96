/* The route table: every path the server answers, in one place. */
#include <string.h>

#include "srv.h"

static const srv_route routes[] = {
    { "/quantize-dequantize", SRV_ROUTE_QDQ, "POST", "qdq" },
    { "/healthz", SRV_ROUTE_HEALTHZ, "GET, HEAD", "healthz" },
    { "/readyz", SRV_ROUTE_READYZ, "GET, HEAD", "readyz" },
    { "/metrics", SRV_ROUTE_METRICS, "GET, HEAD", "metrics" },
};

static const srv_route not_found = { "", SRV_ROUTE_NONE, "", "not_found" };

const srv_route *srv_route_find(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
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
    return not_found.name;
}
