/* The status table's lookups (status.h). */
#include "status.h"

typedef struct row {
    int http;
    const char *word;
    int grpc;
} row;

static const row rows[PROTO_NSTATUS] = {
#define ROW(code, http, word, grpc) [code] = { http, word, grpc },
    PROTO_STATUS_TABLE(ROW)
#undef ROW
};

static const row *find(int code)
{
    return code >= 0 && code < PROTO_NSTATUS && rows[code].word ? &rows[code] : NULL;
}

int proto_status_http(int code)
{
    const row *r = find(code);
    return r ? r->http : 500;
}

const char *proto_status_word(int code)
{
    const row *r = find(code);
    return r ? r->word : "INTERNAL";
}

int proto_status_grpc(int code)
{
    const row *r = find(code);
    return r ? r->grpc : 13;
}
