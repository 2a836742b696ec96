/*
 * libFuzzer target: the safetensors header (proto/safetensors.h).
 *
 * Input: one control byte, then the header's JSON. The control byte picks the limits (bit 0:
 * the fuzz limits, else none), the policy text given to the writer (bits 1-2) and the number of
 * extra tensors it appends (bits 3-4). The first 8 bytes also go through proto_st_prefix as a
 * file's prefix.
 *
 * Invariants (abort on a breach): a failure has a known status and a message starting with
 * "safetensors" and leaves the header empty; a header read has every tensor's bytes equal to
 * its shape's, the tensors tiling [0, data_len) in data order, names unique and found where they
 * are; read again with its data length known it is accepted, and with one byte more or less
 * refused; written (with a policy and extra tensors) and read back it has the same tensors in
 * the same order, the same metadata plus the policy's key, the extras after the data; and the
 * header read back, written again with the same policy, gives the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_require.h"
#include "safetensors.h"


static void check_failure(int rc, const qdq_error *e, const proto_st_header *h)
{
    REQUIRE(rc == PROTO_ESAFETENSORS || rc == PROTO_ETOOBIG || rc == PROTO_ENOMEM,
            "status %d: %s", rc, e->msg);
    REQUIRE(e->code == rc && !strncmp(e->msg, "safetensors", 11), "message: %s", e->msg);
    REQUIRE(h->n_tensors == 0 && !h->tensors && !h->chars && !h->dims && !h->meta,
            "header not empty after a failure");
}

/* Everything a header read must hold. */
static void check_header(const proto_st_header *h)
{
    uint64_t at = 0;
    for (size_t i = 0; i < h->n_tensors; i++) {
        const proto_st_tensor *t = &h->tensors[h->by_offset[i]];
        uint64_t count, bytes;
        REQUIRE(h->by_offset[i] < h->n_tensors, "by_offset out of range");
        REQUIRE(t->begin == at, "tensor %zu in data order begins at %llu, not %llu", i,
                (unsigned long long)t->begin, (unsigned long long)at);
        REQUIRE(proto_st_bytes(t->dtype, t->dims, t->rank, &count, &bytes) == 0,
                "a tensor read has no size");
        REQUIRE(count == t->count && t->end - t->begin == bytes && t->end >= t->begin,
                "tensor %zu: [%llu, %llu) for %llu bytes", i, (unsigned long long)t->begin,
                (unsigned long long)t->end, (unsigned long long)bytes);
        REQUIRE(t->rank <= PROTO_MAX_RANK && (t->rank == 0) == (t->dims == NULL), "rank");
        REQUIRE(t->name[t->name_len] == 0, "name not NUL-terminated");
        at = t->end;
    }
    REQUIRE(at == h->data_len, "data_len %llu, tensors end at %llu",
            (unsigned long long)h->data_len, (unsigned long long)at);
    for (size_t i = 0; i < h->n_tensors; i++) {
        const proto_st_tensor *t = &h->tensors[i];
        REQUIRE(proto_st_find(h, t->name, t->name_len) == (ptrdiff_t)i, "find tensor %zu", i);
        if (i) { /* by name: strictly increasing */
            const proto_st_tensor *a = &h->tensors[h->by_name[i - 1]], *b = &h->tensors[h->by_name[i]];
            size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
            int c = memcmp(a->name, b->name, n);
            REQUIRE(c < 0 || (c == 0 && a->name_len < b->name_len), "names not unique or sorted");
        }
    }
    for (size_t i = 0; i < h->n_meta; i++)
        REQUIRE(h->meta[i].key[h->meta[i].key_len] == 0 &&
                h->meta[i].value[h->meta[i].value_len] == 0, "metadata not NUL-terminated");
    REQUIRE(h->has_meta || h->n_meta == 0, "metadata without __metadata__");
}

static bool same_tensor(const proto_st_tensor *a, const proto_st_tensor *b)
{
    if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len) ||
        a->dtype != b->dtype || a->rank != b->rank || a->count != b->count ||
        a->begin != b->begin || a->end != b->end)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

static bool same_str(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && !memcmp(a, b, an);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (size >= 8) {
        uint64_t n;
        qdq_error pe = { 0 };
        int rc = proto_st_prefix(data, size, &n, &pe);
        REQUIRE(rc == 0 ? n + 8 <= size : rc == PROTO_ESAFETENSORS && n == 0 && pe.msg[0],
                "prefix %d", rc);
    }
    uint8_t ctl = data[0];
    const char *json = (const char *)data + 1;
    size_t len = size - 1;
    const proto_limits *lim = ctl & 1 ? &LIMITS : NULL;
    static const char *const policies[4] = { NULL, "", "{\"defaults\":{\"num_bits\":4}}",
                                             "q\"\\\n\x01\x7f\xc3\xa9/" };
    const char *policy = policies[(ctl >> 1) & 3];
    int n_extra = (ctl >> 3) & 3;

    proto_st_header h, h2, h3;
    qdq_error e = { 0 };
    int rc = proto_st_header_parse(json, len, PROTO_LENGTH_UNKNOWN, lim, &h, &e);
    if (rc) {
        check_failure(rc, &e, &h);
        return 0;
    }
    check_header(&h);

    /* The data length known: exactly the header's, and no other. */
    memset(&e, 0, sizeof e);
    if (h.data_len != PROTO_LENGTH_UNKNOWN) {
        rc = proto_st_header_parse(json, len, h.data_len, lim, &h2, &e);
        REQUIRE(rc == 0 && h2.n_tensors == h.n_tensors, "refused with its own length: %s", e.msg);
        proto_st_header_clear(&h2);
        if (h.data_len + 1 != PROTO_LENGTH_UNKNOWN) {
            rc = proto_st_header_parse(json, len, h.data_len + 1, lim, &h2, &e);
            REQUIRE(rc == PROTO_ESAFETENSORS, "one byte more accepted");
            memset(&e, 0, sizeof e);
            REQUIRE(proto_st_check_data_len(&h, h.data_len + 1, &e) == PROTO_ESAFETENSORS, "check");
        }
        if (h.data_len) {
            memset(&e, 0, sizeof e);
            rc = proto_st_header_parse(json, len, h.data_len - 1, lim, &h2, &e);
            REQUIRE(rc == PROTO_ESAFETENSORS, "one byte less accepted");
        }
    }

    /* Extras: ranges-like tensors named after the first tensors, where the name is free. */
    static const char *const suffix[3] = { ".qdq_input_min", ".qdq_scale", ".qdq_inverse_scale" };
    proto_st_extra x[3];
    char names[3][300];
    int64_t dims[3][1];
    size_t nx = 0;
    uint64_t extra_bytes = 0;
    for (int i = 0; i < n_extra && (size_t)i < h.n_tensors; i++) {
        const proto_st_tensor *t = &h.tensors[i];
        if (t->name_len > 200 || strlen(t->name) != t->name_len)
            continue;
        snprintf(names[nx], sizeof names[nx], "%s%s", t->name, suffix[i]);
        if (proto_st_has_name(&h, names[nx]))
            continue;
        dims[nx][0] = (int64_t)(t->count % 5);
        x[nx] = (proto_st_extra){ names[nx], i == 1 ? PROTO_ST_F64 : PROTO_ST_F32, i == 2 ? 0 : 1,
                                  dims[nx] };
        extra_bytes += (i == 1 ? 8 : 4) * (i == 2 ? 1 : (uint64_t)dims[nx][0]);
        nx++;
    }
    proto_buf b = { 0 }, b2 = { 0 };
    memset(&e, 0, sizeof e);
    rc = proto_st_header_write(&h, policy, x, nx, &b, &e);
    if (rc) {
        /* only a data section past 2^64 or a header past the format's limit */
        REQUIRE(rc == QDQ_EINVAL || rc == PROTO_ETOOBIG, "write failed: %d %s", rc, e.msg);
        REQUIRE(b.len == 0, "a failed write left bytes");
        goto out;
    }
    uint64_t n;
    memset(&e, 0, sizeof e);
    REQUIRE(b.len >= 16 && proto_st_prefix((const uint8_t *)b.data, b.len, &n, &e) == 0 &&
            n == b.len - 8 && n % 8 == 0, "written prefix: %s", e.msg);
    rc = proto_st_header_parse(b.data + 8, (size_t)n, h.data_len + extra_bytes, lim, &h2, &e);
    REQUIRE(rc == 0, "the written header is refused: %s\n%.*s", e.msg, (int)(b.len - 8),
            b.data + 8);
    check_header(&h2);
    REQUIRE(h2.n_tensors == h.n_tensors + nx, "%zu tensors read back, %zu written",
            h2.n_tensors, h.n_tensors + nx);
    for (size_t i = 0; i < h.n_tensors; i++)
        REQUIRE(same_tensor(&h.tensors[i], &h2.tensors[i]), "tensor %zu changed", i);
    uint64_t at = h.data_len;
    for (size_t i = 0; i < nx; i++) {
        const proto_st_tensor *t = &h2.tensors[h.n_tensors + i];
        REQUIRE(!strcmp(t->name, x[i].name) && t->dtype == x[i].dtype && t->rank == x[i].rank &&
                t->begin == at, "extra %zu", i);
        at = t->end;
    }
    /* The metadata: the input's, in order, the policy's key replaced in place or added. */
    const char *key = PROTO_ST_POLICY_KEY;
    size_t kl = strlen(key), m = 0;
    bool replaced = false;
    REQUIRE(h2.has_meta == (h.has_meta || policy), "metadata presence");
    for (size_t i = 0; i < h.n_meta; i++, m++) {
        REQUIRE(m < h2.n_meta && same_str(h.meta[i].key, h.meta[i].key_len, h2.meta[m].key,
                                          h2.meta[m].key_len), "metadata key %zu", i);
        bool ours = policy && same_str(h.meta[i].key, h.meta[i].key_len, key, kl);
        replaced |= ours;
        REQUIRE(ours ? same_str(policy, strlen(policy), h2.meta[m].value, h2.meta[m].value_len)
                     : same_str(h.meta[i].value, h.meta[i].value_len, h2.meta[m].value,
                                h2.meta[m].value_len), "metadata value %zu", i);
    }
    if (policy && !replaced)
        REQUIRE(m + 1 == h2.n_meta && same_str(h2.meta[m].key, h2.meta[m].key_len, key, kl) &&
                same_str(h2.meta[m].value, h2.meta[m].value_len, policy, strlen(policy)),
                "policy key added");
    else
        REQUIRE(m == h2.n_meta, "metadata count");

    /* Read back and written again: the same bytes. */
    memset(&e, 0, sizeof e);
    REQUIRE(proto_st_header_write(&h2, policy, NULL, 0, &b2, &e) == 0 && b2.len == b.len &&
            !memcmp(b.data, b2.data, b.len), "rewrite differs: %s", e.msg);
    /* Without a policy nor extras, a header read back from our own output is a fixed point. */
    b2.len = 0;
    REQUIRE(proto_st_header_write(&h, NULL, NULL, 0, &b2, &e) == 0, "plain write");
    memset(&e, 0, sizeof e);
    REQUIRE(proto_st_header_parse(b2.data + 8, b2.len - 8, h.data_len, lim, &h3, &e) == 0,
            "plain write refused: %s", e.msg);
    for (size_t i = 0; i < h.n_tensors; i++)
        REQUIRE(same_tensor(&h.tensors[i], &h3.tensors[i]), "plain: tensor %zu changed", i);
    REQUIRE(h3.n_meta == h.n_meta && h3.has_meta == h.has_meta, "plain: metadata");
    proto_st_header_clear(&h3);
    proto_st_header_clear(&h2);
out:
    proto_buf_free(&b);
    proto_buf_free(&b2);
    proto_st_header_clear(&h);
    return 0;
}
