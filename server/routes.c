/* The route table: every path the server answers, in one place, and the small answers. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "kserve.h"
#include "routes.h"
#include "status.h"

static void healthz(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    srv_answer_json(ans, "{\"status\":\"ok\"}");
}

/* While draining, readiness is 503: load balancers move clients elsewhere. */
static bool not_ready(const srv_view *v, srv_answer *ans)
{
    if (!v->draining)
        return false;
    qdq_error e = { 0 };
    qdq_fail(&e, PROTO_EBUSY, "the server is shutting down");
    srv_answer_error(ans, &e, NULL);
    return true;
}

static void readyz(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    if (!not_ready(v, ans))
        srv_answer_json(ans, "{\"status\":\"ready\"}");
}

static void metrics(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    proto_buf b = { 0 };
    srv_answer_clear(ans);
    if (srv_metrics_write(&v->gauges, &b)) {
        proto_buf_free(&b);
        qdq_error e = { 0 };
        qdq_fail(&e, PROTO_ENOMEM, "out of memory writing metrics");
        srv_answer_error(ans, &e, NULL);
        return;
    }
    ans->status = 200;
    ans->a.ctype = "text/plain; version=0.0.4; charset=utf-8";
    ans->a.body = proto_buf_detach(&b, &ans->a.len);
}

static void v2_server(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    srv_answer_json(ans, "{\"name\":\"qdq-server\",\"version\":\"" QDQ_SERVER_VERSION "\","
                         "\"extensions\":[\"binary_tensor_data\",\"parameters\"]}");
}

static void v2_live(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    srv_answer_json(ans, "{\"live\":true}");
}

static void v2_ready(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    if (!not_ready(v, ans))
        srv_answer_json(ans, "{\"ready\":true}");
}

static void v2_model_ready(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    if (!not_ready(v, ans))
        srv_answer_json(ans, "{\"name\":\"" PROTO_V2_MODEL_NAME "\",\"ready\":true}");
}

/* The model's metadata (KServe v2): any shape; FP64, FP16 and BF16 are taken too. */
static void v2_model(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    srv_answer_json(ans,
        "{\"name\":\"" PROTO_V2_MODEL_NAME "\",\"versions\":[\"" PROTO_V2_MODEL_VERSION "\"],"
        "\"platform\":\"qdq-server\","
        "\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"input_min\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"input_max\",\"datatype\":\"FP32\",\"shape\":[-1]}],"
        "\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"input_min\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"input_max\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"output_min\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"output_max\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"scale\",\"datatype\":\"FP32\",\"shape\":[-1]},"
        "{\"name\":\"inverse_scale\",\"datatype\":\"FP32\",\"shape\":[-1]}],"
        "\"parameters\":{\"datatypes\":[\"FP32\",\"FP64\",\"FP16\",\"BF16\"]}}");
}

static void v2_no_model(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    const char *name = path + strlen("/v2/models/");
    qdq_error e = { 0 };
    qdq_fail(&e, PROTO_ENOTFOUND, "unknown model or version: '%.*s' (this server serves %s, "
             "version %s)", (int)strcspn(name, "/"), name, PROTO_V2_MODEL_NAME,
             PROTO_V2_MODEL_VERSION);
    srv_answer_error(ans, &e, NULL);
}

static void not_found(const srv_view *v, const char *method, const char *path,
                    srv_answer *ans)
{
    qdq_error e = { 0 };
    qdq_fail(&e, PROTO_ENOTFOUND, "no route for %s %s", method, path);
    srv_answer_error(ans, &e, NULL);
}

#define GET "GET, HEAD"
#define OPEN SRV_ROUTE_OPEN
#define BODY SRV_ROUTE_BODY
#define V2M "/v2/models/" PROTO_V2_MODEL_NAME
#define V2MV V2M "/versions/" PROTO_V2_MODEL_VERSION

static const srv_route routes[] = {
    { "/quantize-dequantize", SRV_ROUTE_QDQ, "POST", "qdq", BODY, PROTO_KIND_QDQ, NULL },
    { "/healthz", SRV_ROUTE_HEALTHZ, GET, "healthz", OPEN, 0, healthz },
    { "/readyz", SRV_ROUTE_READYZ, GET, "readyz", OPEN, 0, readyz },
    { "/metrics", SRV_ROUTE_METRICS, GET, "metrics", 0, 0, metrics },
    { V2M "/infer", SRV_ROUTE_V2_INFER, "POST", "v2_infer", BODY, PROTO_KIND_V2_INFER, NULL },
    { V2MV "/infer", SRV_ROUTE_V2_INFER, "POST", "v2_infer", BODY, PROTO_KIND_V2_INFER, NULL },
    { "/v2", SRV_ROUTE_V2_SERVER, GET, "v2_server", 0, 0, v2_server },
    { "/v2/health/live", SRV_ROUTE_V2_LIVE, GET, "v2_live", OPEN, 0, v2_live },
    { "/v2/health/ready", SRV_ROUTE_V2_READY, GET, "v2_ready", OPEN, 0, v2_ready },
    { V2M, SRV_ROUTE_V2_MODEL, GET, "v2_model", 0, 0, v2_model },
    { V2MV, SRV_ROUTE_V2_MODEL, GET, "v2_model", 0, 0, v2_model },
    { V2M "/ready", SRV_ROUTE_V2_MODEL_READY, GET, "v2_model_ready", 0, 0, v2_model_ready },
    { V2MV "/ready", SRV_ROUTE_V2_MODEL_READY, GET, "v2_model_ready", 0, 0, v2_model_ready },
};

/* Any other path under /v2/models/ names a model (or version) this server does not have. */
static const srv_route no_model = { "/v2/models/", SRV_ROUTE_V2_NO_MODEL, "", "v2_no_model",
                                    SRV_ROUTE_ANYMETHOD, 0, v2_no_model };

static const srv_route none = { "", SRV_ROUTE_NONE, "", "not_found", SRV_ROUTE_ANYMETHOD, 0,
                                not_found };

const srv_route *srv_route_find(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
    if (strncmp(path, no_model.path, strlen(no_model.path)) == 0)
        return &no_model;
    return &none;
}

bool srv_route_allows(const srv_route *r, const char *method)
{
    if (r->flags & SRV_ROUTE_ANYMETHOD)
        return true;
    size_t n = strlen(method);
    for (const char *p = r->allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == r->allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

const char *const *srv_route_names(void)
{
    static const char *names[SRV_ROUTES];
    if (!names[0]) {
        names[SRV_ROUTE_NONE] = none.name;
        names[SRV_ROUTE_V2_NO_MODEL] = no_model.name;
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
            names[routes[i].id] = routes[i].name;
    }
    return names;
}
