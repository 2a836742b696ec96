#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the per-thread handle ---- */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;
static __thread CURL *thread_handle;

static void handle_free(void *h)
{
    if (h)
        curl_easy_cleanup(h);
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&handle_key, handle_free);
}

static CURL *handle(void)
{
    pthread_once(&once, global_init);
    if (!thread_handle) {
        thread_handle = curl_easy_init();
        pthread_setspecific(handle_key, thread_handle);
    }
    return thread_handle;
}

void hc_thread_done(void)
{
    if (!thread_handle)
        return;
    pthread_setspecific(handle_key, NULL);
    curl_easy_cleanup(thread_handle);
    thread_handle = NULL;
}

/* ---- callbacks ---- */

typedef struct upload {
    const char *base, *p;
    size_t len, left, chunk;
} upload;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *cls)
{
    upload *u = cls;
    size_t n = size * nitems;
    if (n > u->left)
        n = u->left;
    if (u->chunk && n > u->chunk)
        n = u->chunk;
    if (n)
        memcpy(buf, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

/* Lets curl resend the body (it retries a request whose reused connection turned out closed). */
static int seek_cb(void *cls, curl_off_t offset, int origin)
{
    upload *u = cls;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > u->len)
        return CURL_SEEKFUNC_CANTSEEK;
    u->p = u->base + offset;
    u->left = u->len - (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

typedef struct sink {
    hc_resp *r;
    size_t body_cap, hdrs_cap;
} sink;

static size_t write_cb(char *data, size_t size, size_t nitems, void *cls)
{
    sink *s = cls;
    size_t n = size * nitems;
    if (grow(&s->r->body, &s->body_cap, s->r->len + n + 1))
        return 0;
    memcpy(s->r->body + s->r->len, data, n);
    s->r->len += n;
    s->r->body[s->r->len] = '\0';
    return n;
}

/* Keeps the header lines of the last response (a 100 Continue block is dropped). */
static size_t header_cb(char *data, size_t size, size_t nitems, void *cls)
{
    sink *s = cls;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        s->r->hdrs_len = 0;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (grow(&s->r->hdrs, &s->hdrs_cap, s->r->hdrs_len + nl + vl + 2))
        return 0;
    char *o = s->r->hdrs + s->r->hdrs_len;
    memcpy(o, data, nl);
    o[nl] = '\0';
    memcpy(o + nl + 1, v, vl);
    o[nl + 1 + vl] = '\0';
    s->r->hdrs_len += nl + vl + 2;
    return n;
}

/* ---- the contract log (QDQ_CONTRACT_LOG) ---- */

/* Body bytes kept: what has a schema (docs/openapi.yaml), up to 1 MiB: a JSON body whole, a
 * binary KServe answer's JSON header, a checkpoint's safetensors header; else 256 bytes. */
#define CONTRACT_JSON_MAX (1u << 20)
#define CONTRACT_HEAD (256u)
#define CONTRACT_SEEN (1u << 15) /* exchanges remembered, to log each distinct one once */

static pthread_mutex_t contract_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t contract_seen[CONTRACT_SEEN];
static size_t contract_nseen;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Whether an exchange with this digest was logged already (else it is remembered). Called
 * under contract_lock. Once the table is three quarters full, everything is logged. */
static bool contract_repeat(uint64_t d)
{
    if (contract_nseen >= CONTRACT_SEEN / 4 * 3)
        return false;
    d = d ? d : 1;
    for (size_t i = d % CONTRACT_SEEN;; i = (i + 1) % CONTRACT_SEEN) {
        if (contract_seen[i] == d)
            return true;
        if (!contract_seen[i]) {
            contract_seen[i] = d;
            contract_nseen++;
            return false;
        }
    }
}

/* The value of a request header given as "Name: value", or NULL. */
static const char *request_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':') {
            const char *v = headers[i] + n + 1;
            return v + strspn(v, " \t");
        }
    return NULL;
}

/*
 * Appends the exchange to $QDQ_CONTRACT_LOG as one JSON line, in one write (O_APPEND): lines of
 * threads and processes never interleave. An exchange equal to one logged before (method, URL,
 * status, headers, body; the date, and a generated or echoed request id of the same length, do
 * not count) is left out: a load of the same request adds one line. Failures to log are
 * ignored (the validator fails on an empty log).
 */
static void contract_log(const char *method, const char *url, const char *const *headers,
                         const hc_resp *r)
{
    const char *path = getenv("QDQ_CONTRACT_LOG");
    if (!path || !*path || r->status == 0)
        return;
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : url;
    p = p ? p : "/";
    const char *ctype = hc_header(r, "Content-Type"), *ihcl;
    uint64_t keep = CONTRACT_HEAD;
    if (ctype && strncasecmp(ctype, "application/json", 16) == 0)
        keep = r->len;
    else if ((ihcl = hc_header(r, "Inference-Header-Content-Length")))
        keep = strtoull(ihcl, NULL, 10);
    else if (ctype && strcasecmp(ctype, "application/x-safetensors") == 0 && r->len >= 8 &&
             r->body) { /* the 8-byte length, little-endian, and the header */
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | (unsigned char)r->body[i];
        keep = n < CONTRACT_JSON_MAX ? 8 + n : CONTRACT_JSON_MAX;
    }
    keep = keep > r->len ? r->len : keep > CONTRACT_JSON_MAX ? CONTRACT_JSON_MAX : keep;
    const char *own_id = request_header(headers, "X-Request-Id");
    uint64_t d = fnv(0xcbf29ce484222325ull, method, strlen(method) + 1);
    d = fnv(d, p, strlen(p) + 1);
    d = fnv(d, &r->status, sizeof r->status);
    d = fnv(d, &r->len, sizeof r->len);
    d = fnv(d, r->body ? r->body : "", r->body ? keep : 0);
    for (const char *q = r->hdrs, *end = r->hdrs ? r->hdrs + r->hdrs_len : NULL; q && q < end;) {
        const char *v = q + strlen(q) + 1;
        /* The date, and a request id that is generated or the request's own, stand for
         * their kind: every echo of an id of one length is the same case. */
        char kind[32];
        if (strcasecmp(q, "Date") == 0)
            snprintf(kind, sizeof kind, "date");
        else if (strcasecmp(q, "X-Request-Id") == 0 && own_id && strcmp(v, own_id) == 0)
            snprintf(kind, sizeof kind, "echo %zu", strlen(v));
        else if (strcasecmp(q, "X-Request-Id") == 0 && !own_id && strlen(v) == 16 &&
                 strspn(v, "0123456789abcdef") == 16)
            snprintf(kind, sizeof kind, "generated");
        else
            kind[0] = '\0';
        d = fnv(d, q, strlen(q) + 1);
        d = kind[0] ? fnv(d, kind, strlen(kind) + 1) : fnv(d, v, strlen(v) + 1);
        q = v + strlen(v) + 1;
    }
    pthread_mutex_lock(&contract_lock);
    bool repeat = contract_repeat(d);
    pthread_mutex_unlock(&contract_lock);
    if (repeat)
        return;

    cJSON *o = cJSON_CreateObject(), *h = cJSON_AddArrayToObject(o, "headers");
    cJSON_AddStringToObject(o, "src", program_invocation_short_name);
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "url", p);
    const char *ct = request_header(headers, "Content-Type"), *ac = request_header(headers, "Accept");
    if (ct)
        cJSON_AddStringToObject(o, "req_content_type", ct);
    if (ac)
        cJSON_AddStringToObject(o, "req_accept", ac);
    cJSON_AddNumberToObject(o, "status", (double)r->status);
    for (const char *q = r->hdrs, *end = r->hdrs ? r->hdrs + r->hdrs_len : NULL; q && q < end;) {
        const char *v = q + strlen(q) + 1;
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(q));
        cJSON_AddItemToArray(pair, cJSON_CreateString(v));
        cJSON_AddItemToArray(h, pair);
        q = v + strlen(v) + 1;
    }
    cJSON_AddNumberToObject(o, "body_len", (double)r->len);
    char *b64 = hc_b64_encode(r->body ? r->body : "", r->body ? keep : 0);
    cJSON_AddStringToObject(o, "body_b64", b64 ? b64 : "");
    free(b64);
    if (r->err[0]) /* an answer cut short: its body is not whole */
        cJSON_AddStringToObject(o, "error", r->err);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n++] = '\n'; /* over the NUL: the line is written by length */
    pthread_mutex_lock(&contract_lock);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    for (size_t off = 0; fd >= 0 && off < n;) {
        ssize_t k = write(fd, line + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&contract_lock);
    free(line);
}

/* ---- requests ---- */

static bool has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
            return true;
    return false;
}

int hc_request_ex(const char *method, const char *url, const char *const *headers,
                  const void *body, size_t len, const hc_opts *opts, hc_resp *r)
{
    static const hc_opts defaults = { 0 };
    if (!opts)
        opts = &defaults;
    memset(r, 0, sizeof *r);
    sink s = { .r = r };
    r->body = malloc(1);
    if (r->body)
        r->body[0] = '\0';
    s.body_cap = 1;
    CURL *h = handle();
    if (!h) {
        snprintf(r->err, sizeof r->err, "curl_easy_init failed");
        return -1;
    }
    curl_easy_reset(h);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, opts->timeout_ms > 0 ? opts->timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    /* The tests check bodies as sent: no automatic decompression. */
    curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    if (opts->fresh)
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    if (opts->max_send_bps > 0)
        curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)opts->max_send_bps);

    upload u = { body, body, len, len, opts->read_chunk };
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &u);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &u);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, opts->chunked ? (curl_off_t)-1
                                                                      : (curl_off_t)len);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    struct curl_slist *list = NULL;
    for (int i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    if (body && !has_header(headers, "Content-Type"))
        list = curl_slist_append(list, "Content-Type:");
    if (!has_header(headers, "Expect"))
        list = curl_slist_append(list, "Expect:");
    if (opts->chunked && !has_header(headers, "Transfer-Encoding"))
        list = curl_slist_append(list, "Transfer-Encoding: chunked");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(list);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->new_conns);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &r->seconds);
    curl_off_t sent = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent);
    r->sent = (long long)sent;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK)
        snprintf(r->err, sizeof r->err, "%s: %s", curl_easy_strerror(rc), errbuf);
    contract_log(method, url, headers, r);
    return r->status ? 0 : -1;
}

int hc_request(const char *method, const char *url, const char *const *headers,
               const void *body, size_t len, hc_resp *r)
{
    return hc_request_ex(method, url, headers, body, len, NULL, r);
}

const char *hc_header(const hc_resp *r, const char *name)
{
    const char *p = r->hdrs, *end = r->hdrs ? r->hdrs + r->hdrs_len : NULL;
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

void hc_resp_free(hc_resp *r)
{
    free(r->body);
    free(r->hdrs);
    r->body = r->hdrs = NULL;
    r->len = r->hdrs_len = 0;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *hc_b64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

unsigned char *hc_b64_decode(const char *text, size_t n, size_t *out_len)
{
    *out_len = 0;
    if (n % 4)
        return NULL;
    size_t pad = n && text[n - 1] == '=' ? (text[n - 2] == '=' ? 2 : 1) : 0;
    unsigned char *out = malloc(n / 4 * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            bool padding = i + 4 == n && k >= 4 - (int)pad;
            v[k] = padding ? 0 : b64_value(text[i + k]);
            if (v[k] < 0) {
                free(out);
                return NULL;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        *o++ = (unsigned char)(w >> 16);
        *o++ = (unsigned char)(w >> 8);
        *o++ = (unsigned char)w;
    }
    *out_len = (size_t)(o - out) - pad;
    return out;
}

/* ---- JSON with exact numbers ---- */

/* Marks a number kept as text inside a cJSON string. */
#define NUM_MARK '#'

/* Length of a JSON number (or NaN / Infinity / -Infinity) at p, or 0. */
static size_t number_len(const char *p, const char *end)
{
    static const char *const tokens[] = { "NaN", "Infinity", "-Infinity" };
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(tokens[i]);
        if ((size_t)(end - p) >= n && memcmp(p, tokens[i], n) == 0)
            return n;
    }
    const char *q = p;
    if (q < end && *q == '-')
        q++;
    if (q < end && *q == '0')
        q++;
    else if (q < end && *q >= '1' && *q <= '9')
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    else
        return 0;
    if (q < end && *q == '.') {
        q++;
        if (q >= end || *q < '0' || *q > '9')
            return 0;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || *q < '0' || *q > '9')
            return 0;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    return (size_t)(q - p);
}

cJSON *hc_json_parse_exact(const char *text, size_t len)
{
    /* Every number grows by three characters (two quotes and the mark) at most. */
    size_t cap = len * 4 + 1;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    const char *p = text, *end = text + len;
    bool in_string = false;
    while (p < end) {
        char c = *p;
        if (in_string) {
            *o++ = c;
            p++;
            if (c == '\\' && p < end)
                *o++ = *p++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            *o++ = *p++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I') {
            size_t n = number_len(p, end);
            if (n == 0) {
                free(out);
                return NULL;
            }
            /* A number must end at a delimiter ("1.5x" is not JSON). */
            char d = p + n < end ? p[n] : ' ';
            if (!strchr(" \t\r\n,]}", d)) {
                free(out);
                return NULL;
            }
            *o++ = '"';
            *o++ = NUM_MARK;
            memcpy(o, p, n);
            o += n;
            *o++ = '"';
            p += n;
            continue;
        }
        *o++ = *p++;
    }
    cJSON *j = cJSON_ParseWithLength(out, (size_t)(o - out));
    free(out);
    return j;
}

const char *hc_json_num(const cJSON *node)
{
    if (!cJSON_IsString(node) || !node->valuestring || node->valuestring[0] != NUM_MARK)
        return NULL;
    return node->valuestring + 1;
}

int hc_raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd p = { fd, POLLOUT, 0 };
    int err = 0;
    socklen_t el = sizeof err;
    if (poll(&p, 1, 5000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
        close(fd);
        return -1;
    }
    return fd;
}
