/*
 * The safetensors header (proto/safetensors.h): the prefix, every rule of the format broken
 * once (data: the header, the data section's length, the status, and words the message must
 * hold: the rule, the tensor's name, the numbers), valid headers of many shapes, and the writer:
 * byte for byte against headers the reference writer produced (its own test vectors), and
 * write -> parse round trips.
 *
 * Headers are written here with ' for " (J() swaps them) so they stay readable; a real quote
 * in a name is \u0027.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "safetensors.h"

#define ES PROTO_ESAFETENSORS
#define UNK PROTO_LENGTH_UNKNOWN

static const proto_limits lim = { 1000000, 8, 16, 1 << 26 };

/* The text with every ' made " (malloc). */
static char *J(const char *s)
{
    char *t = strdup(s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

static int parse(const char *json, uint64_t data_len, proto_st_header *h, qdq_error *e)
{
    char *t = J(json);
    memset(e, 0, sizeof *e);
    int rc = proto_st_header_parse(t, strlen(t), data_len, &lim, h, e);
    free(t);
    return rc;
}

/* ---- every rule broken once ---- */

static const struct bad {
    const char *json;
    uint64_t data_len;
    int code;
    const char *words[4];
} bads[] = {
    /* the header is a JSON object, valid UTF-8, nothing but white space around it */
    { "", 0, ES, { "safetensors header", "empty", "JSON object" } },
    { " \n\t", 0, ES, { "empty" } },
    { "[]", 0, ES, { "the header", "expected a JSON object", "an array" } },
    { "'x'", 0, ES, { "expected a JSON object", "a string" } },
    { "{", 0, ES, { "the header", "expected a key", "end" } },
    { "{}x", 0, ES, { "invalid JSON", "unexpected data after", "byte 2" } },
    { "{} {}", 0, ES, { "unexpected data after", "byte 3" } },
    { "{}\f", 0, ES, { "unexpected data after", "white space" } },
    { "{'a' 1}", 0, ES, { "invalid JSON", "expected ':'" } },
    { "{1:2}", 0, ES, { "expected a key", "a number" } },
    { "{'a':{'dtype':'F32','shape':[],'data_offsets':[0,4]},}", 4, ES,
      { "invalid JSON", "trailing comma" } },
    { "{'\xff':{'dtype':'U8','shape':[],'data_offsets':[0,1]}}", 1, ES,
      { "invalid UTF-8", "byte 2" } },
    { "{'a\xc0\xaf':{'dtype':'U8','shape':[],'data_offsets':[0,1]}}", 1, ES,
      { "invalid UTF-8" } },
    { "{'a':{'dtype':'U8','shape':[],'data_offsets':[0,1],'x':'\xed\xa0\x80'}}", 1, ES,
      { "tensor 'a'", "invalid UTF-8" } },
    { "{'a\\ud800':{}}", 0, ES, { "surrogate" } },
    { "{\xef\xbb\xbf}", 0, ES, { "expected a key", "byte 0xef" } },
    /* __metadata__: an object of string to string, once */
    { "{'__metadata__':'pt'}", 0, ES, { "__metadata__", "an object of string to string" } },
    { "{'__metadata__':[]}", 0, ES, { "__metadata__", "an array" } },
    { "{'__metadata__':{'format':'pt','step':1}}", 0, ES,
      { "__metadata__", "value of 'step'", "a string", "a number" } },
    { "{'__metadata__':{'a':null}}", 0, ES, { "value of 'a'", "null" } },
    { "{'__metadata__':{'a':{'b':'c'}}}", 0, ES, { "value of 'a'", "an object" } },
    { "{'__metadata__':{},'__metadata__':{}}", 0, ES, { "__metadata__ is given twice" } },
    /* a tensor's entry */
    { "{'w':[0,4]}", 4, ES, { "tensor 'w'", "expected an object", "an array" } },
    { "{'w':'F32'}", 4, ES, { "tensor 'w'", "expected an object", "a string" } },
    { "{'w':{'shape':[1],'data_offsets':[0,4]}}", 4, ES, { "tensor 'w'", "no 'dtype'" } },
    { "{'w':{'dtype':'F32','data_offsets':[0,4]}}", 4, ES, { "tensor 'w'", "no 'shape'" } },
    { "{'w':{'dtype':'F32','shape':[1]}}", 4, ES, { "tensor 'w'", "no 'data_offsets'" } },
    { "{'w':{}}", 0, ES, { "tensor 'w'", "no 'dtype'" } },
    { "{'w':{'dtype':'F32','dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 4, ES,
      { "tensor 'w'", "duplicate key 'dtype'" } },
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,4],'shape':[1]}}", 4, ES,
      { "tensor 'w'", "duplicate key 'shape'" } },
    /* dtype */
    { "{'w':{'dtype':'F8','shape':[1],'data_offsets':[0,1]}}", 1, ES,
      { "tensor 'w'", "unknown dtype 'F8'", "BOOL", "F6_E3M2" } },
    { "{'w':{'dtype':'float32','shape':[1],'data_offsets':[0,4]}}", 4, ES,
      { "tensor 'w'", "unknown dtype 'float32'" } },
    { "{'w':{'dtype':'f32','shape':[1],'data_offsets':[0,4]}}", 4, ES,
      { "unknown dtype 'f32'" } },
    { "{'w':{'dtype':'','shape':[1],'data_offsets':[0,4]}}", 4, ES, { "unknown dtype ''" } },
    { "{'w':{'dtype':'F32_EXTRA_LONG_NAME','shape':[1],'data_offsets':[0,4]}}", 4, ES,
      { "unknown dtype 'F32_EXTRA_LONG_NAME'" } },
    { "{'w':{'dtype':32,'shape':[1],'data_offsets':[0,4]}}", 4, ES,
      { "tensor 'w'", "dtype", "expected a string", "a number" } },
    /* shape */
    { "{'w':{'dtype':'F32','shape':2,'data_offsets':[0,8]}}", 8, ES,
      { "tensor 'w'", "shape", "expected an array", "a number" } },
    { "{'w':{'dtype':'F32','shape':[-2],'data_offsets':[0,8]}}", 8, ES,
      { "tensor 'w'", "shape[0]", "negative" } },
    { "{'w':{'dtype':'F32','shape':[1,2.0],'data_offsets':[0,8]}}", 8, ES,
      { "tensor 'w'", "shape[1]", "fraction or exponent" } },
    { "{'w':{'dtype':'F32','shape':[2e0],'data_offsets':[0,8]}}", 8, ES,
      { "shape[0]", "fraction or exponent" } },
    { "{'w':{'dtype':'F32','shape':[02],'data_offsets':[0,8]}}", 8, ES,
      { "shape[0]", "leading zero" } },
    { "{'w':{'dtype':'F32','shape':['2'],'data_offsets':[0,8]}}", 8, ES,
      { "shape[0]", "non-negative integer", "a string" } },
    { "{'w':{'dtype':'F32','shape':[18446744073709551616],'data_offsets':[0,8]}}", 8, ES,
      { "tensor 'w'", "shape[0]", "18446744073709551616", "2^64 - 1" } },
    { "{'w':{'dtype':'F32','shape':[1,1,1,1,1,1,1,1,1],'data_offsets':[0,4]}}", 4,
      PROTO_ETOOBIG, { "tensor 'w'", "more than 8 dimensions", "max_rank" } },
    /* data_offsets */
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':4}}", 4, ES,
      { "tensor 'w'", "data_offsets", "expected an array" } },
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':[]}}", 4, ES,
      { "tensor 'w'", "data_offsets must be [begin, end]", "[]" } },
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':[4]}}", 4, ES,
      { "tensor 'w'", "[begin, end]", "one number" } },
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,4,8]}}", 4, ES,
      { "tensor 'w'", "[begin, end]", "more than two" } },
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':[-4,0]}}", 4, ES,
      { "data_offsets[0]", "negative" } },
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,4.5]}}", 4, ES,
      { "data_offsets[1]", "fraction" } },
    { "{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,null]}}", 4, ES,
      { "data_offsets[1]", "non-negative integer", "null" } },
    { "{'w':{'dtype':'F32','shape':[0],'data_offsets':[8,4]}}", 4, ES,
      { "tensor 'w'", "data_offsets [8, 4]", "end before they begin" } },
    /* each tensor's size: product(shape) x element size, without overflow */
    { "{'w':{'dtype':'F32','shape':[2,3],'data_offsets':[0,20]}}", 20, ES,
      { "tensor 'w'", "data_offsets [0, 20] hold 20 bytes", "shape [2,3] of F32 needs 24 bytes",
        "6 elements of 4 bytes" } },
    { "{'w':{'dtype':'BF16','shape':[],'data_offsets':[0,4]}}", 4, ES,
      { "tensor 'w'", "hold 4 bytes", "shape [] of BF16 needs 2 bytes", "1 elements of 2 bytes" } },
    { "{'w':{'dtype':'U8','shape':[0],'data_offsets':[0,1]}}", 1, ES,
      { "hold 1 bytes", "needs 0 bytes", "1 byte)" } },
    { "{'w':{'dtype':'F4','shape':[1,3],'data_offsets':[0,2]}}", 2, ES,
      { "tensor 'w'", "shape [1,3] of F4", "3 elements of 4 bits", "not a whole number of bytes" } },
    { "{'w':{'dtype':'F6_E2M3','shape':[2],'data_offsets':[0,2]}}", 2, ES,
      { "F6_E2M3", "2 elements of 6 bits", "whole number of bytes" } },
    { "{'w':{'dtype':'F4','shape':[4],'data_offsets':[0,4]}}", 4, ES,
      { "hold 4 bytes", "F4 needs 2 bytes", "4 elements of 4 bits" } },
    { "{'test':{'dtype':'I32','shape':[2,18446744073709551614],'data_offsets':[0,16]}}", 16, ES,
      { "tensor 'test'", "shape [2,18446744073709551614] overflows", "2^64 - 1",
        "dimension 1" } },
    { "{'test':{'dtype':'I32','shape':[2,9223372036854775807],'data_offsets':[0,16]}}", 16, ES,
      { "tensor 'test'", "of I32 overflows", "18446744073709551614 elements of 32 bits" } },
    { "{'z':{'dtype':'I32','shape':[4294967296,4294967296,0],'data_offsets':[0,0]}}", 0, ES,
      { "tensor 'z'", "overflows", "dimension 1" } },
    /* a dimension the op cannot hold (allowed by the format only with another dimension 0) */
    { "{'z':{'dtype':'I32','shape':[0,9223372036854775808],'data_offsets':[0,0]}}", 0,
      PROTO_ETOOBIG, { "tensor 'z'", "shape[1] = 9223372036854775808", "2^63 - 1" } },
    /* names unique */
    { "{'a':{'dtype':'U8','shape':[1],'data_offsets':[0,1]},"
      "'b':{'dtype':'U8','shape':[1],'data_offsets':[1,2]},"
      "'a':{'dtype':'U8','shape':[1],'data_offsets':[2,3]}}", 3, ES,
      { "tensor 'a' is named twice", "unique" } },
    { "{'a':{'dtype':'U8','shape':[0],'data_offsets':[0,0]},"
      "'\\u0061':{'dtype':'U8','shape':[0],'data_offsets':[0,0]}}", 0, ES,
      { "tensor 'a' is named twice" } },
    /* contiguous from 0, no gap, no overlap, ending at the data section's end */
    { "{'a':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}", 8, ES,
      { "gap", "no tensor starts at byte 0", "'a'", "[4, 8]" } },
    { "{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
      "'b':{'dtype':'F32','shape':[1],'data_offsets':[8,12]}}", 12, ES,
      { "gap", "bytes [4, 8) are in no tensor", "'a' [0, 4]", "'b' [8, 12]" } },
    { "{'b':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
      "'a':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}", 8, ES,
      { "overlap", "'a' [4, 8]", "inside 'b' [0, 8]" } },
    { "{'b':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
      "'e':{'dtype':'F32','shape':[0],'data_offsets':[4,4]}}", 8, ES,
      { "overlap", "'e' [4, 4]", "inside 'b' [0, 8]" } },
    { "{'b':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
      "'c':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}", 8, ES,
      { "overlap", "[0, 8]" } },
    { "{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 6, ES,
      { "data section is 6 bytes", "end at byte 4", "'a'", "2 trailing bytes" } },
    { "{'a':{'dtype':'F32','shape':[3],'data_offsets':[0,12]}}", 8, ES,
      { "data section is 8 bytes", "'a' ends at byte 12", "[0, 12]", "4 bytes short" } },
    { "{}", 1, ES, { "no tensors", "data section is 1 bytes" } },
    { "{'__metadata__':{'a':'b'}}", 16, ES, { "no tensors", "16 bytes" } },
    /* the JSON depth limit (lim.max_depth 16) reaches into ignored values */
    { "{'w':{'dtype':'U8','shape':[0],'data_offsets':[0,0],"
      "'x':[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]}}", 0, PROTO_ETOOBIG, { "nesting depth 17" } },
};

static void broken_rules(void)
{
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        proto_st_header h;
        qdq_error e;
        int rc = parse(b->json, b->data_len, &h, &e);
        CHECK(rc == b->code && e.code == b->code, "bad %zu (%s): rc %d, want %d: %s", i, b->json,
              rc, b->code, e.msg);
        CHECK(!strncmp(e.msg, "safetensors", 11), "bad %zu: prefix: %s", i, e.msg);
        for (int k = 0; k < 4 && b->words[k]; k++) {
            CHECK(strstr(e.msg, b->words[k]) != NULL, "bad %zu: message lacks \"%s\": %s", i,
                  b->words[k], e.msg);
        }
        CHECK(h.n_tensors == 0 && h.tensors == NULL && h.chars == NULL, "bad %zu: h left empty",
              i);
        proto_st_header_clear(&h);
    }
    /* The status table's row. */
    CHECK(proto_status_http(ES) == 400 && !strcmp(proto_status_word(ES), "INVALID_SAFETENSORS") &&
          proto_status_grpc(ES) == 3, "ESAFETENSORS row");
}

/* ---- the prefix ---- */

static void prefix(void)
{
    uint8_t b[8] = { 60, 0, 0, 0, 0, 0, 0, 0 };
    uint64_t n = 7;
    qdq_error e = { 0 };
    CHECK(proto_st_prefix(b, 84, &n, &e) == 0 && n == 60, "60 in 84: %s", e.msg);
    CHECK(proto_st_prefix(b, 68, &n, &e) == 0 && n == 60, "60 in exactly 68: %s", e.msg);
    CHECK(proto_st_prefix(b, UNK, &n, &e) == 0 && n == 60, "unknown length: %s", e.msg);
    CHECK(proto_st_prefix(b, 67, &n, &e) == ES && n == 0 && strstr(e.msg, "N = 60") &&
          strstr(e.msg, "8 + N = 68") && strstr(e.msg, "67 bytes"), "60 in 67: %s", e.msg);
    memset(&e, 0, sizeof e);
    CHECK(proto_st_prefix(b, 5, &n, &e) == ES && strstr(e.msg, "5 bytes"), "file of 5: %s",
          e.msg);
    /* 100,000,000 is the most */
    uint64_t v = 100000000;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    memset(&e, 0, sizeof e);
    CHECK(proto_st_prefix(b, UNK, &n, &e) == 0 && n == v, "the limit itself: %s", e.msg);
    b[0]++;
    CHECK(proto_st_prefix(b, UNK, &n, &e) == ES && strstr(e.msg, "N = 100000001") &&
          strstr(e.msg, "limit of 100000000"), "over the limit: %s", e.msg);
    /* little-endian, all 8 bytes: the reference's own case, 0xffffff0000003c */
    uint8_t big[8] = { 60, 0, 0, 0, 0, 0xff, 0xff, 0xff };
    memset(&e, 0, sizeof e);
    CHECK(proto_st_prefix(big, UNK, &n, &e) == ES && strstr(e.msg, "18446742974197923900"),
          "huge N: %s", e.msg);
    memset(&e, 0, sizeof e);
    proto_st_header h;
    char *big_json = malloc(PROTO_ST_MAX_HEADER + 1);
    memset(big_json, ' ', PROTO_ST_MAX_HEADER + 1);
    memcpy(big_json, "{}", 2);
    CHECK(proto_st_header_parse(big_json, PROTO_ST_MAX_HEADER, 0, NULL, &h, &e) == 0,
          "a header of exactly 100000000 bytes: %s", e.msg);
    proto_st_header_clear(&h);
    CHECK(proto_st_header_parse(big_json, PROTO_ST_MAX_HEADER + 1, 0, NULL, &h, &e) == ES &&
          strstr(e.msg, "100000001 bytes"), "one more: %s", e.msg);
    free(big_json);
}

/* ---- valid headers ---- */

static bool dims_are(const proto_st_tensor *t, int rank, const int64_t *d)
{
    if (t->rank != rank)
        return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != d[i])
            return false;
    return true;
}

static void valid_headers(void)
{
    proto_st_header h;
    qdq_error e;

    /* the reference's own test files */
    CHECK(parse("{'test':{'dtype':'I32','shape':[2,2],'data_offsets':[0,16]}}", 16, &h, &e) == 0 &&
          h.n_tensors == 1 && h.tensors[0].dtype == PROTO_ST_I32 && h.tensors[0].count == 4 &&
          h.data_len == 16 && !h.has_meta && h.n_meta == 0, "test I32: %s", e.msg);
    proto_st_header_clear(&h);
    CHECK(parse("{'test':{'dtype':'I32','shape':[],'data_offsets':[0,4]}}", 4, &h, &e) == 0 &&
          h.tensors[0].rank == 0 && h.tensors[0].dims == NULL && h.tensors[0].count == 1,
          "scalar: %s", e.msg);
    proto_st_header_clear(&h);
    CHECK(parse("{'test':{'dtype':'I32','shape':[2,0],'data_offsets':[0, 0]}}", 0, &h, &e) == 0 &&
          h.tensors[0].count == 0 && h.data_len == 0, "empty: %s", e.msg);
    proto_st_header_clear(&h);
    CHECK(parse("{}\r \t\n", 0, &h, &e) == 0 && h.n_tensors == 0, "ws after: %s", e.msg);
    proto_st_header_clear(&h);
    CHECK(parse("\t\n{}\r ", 0, &h, &e) == 0 && h.n_tensors == 0, "ws before: %s", e.msg);
    proto_st_header_clear(&h);

    /* metadata absent, empty, null, present (order kept, values any string) */
    CHECK(parse("{'__metadata__':{}}", 0, &h, &e) == 0 && h.has_meta && h.n_meta == 0,
          "empty metadata: %s", e.msg);
    proto_st_header_clear(&h);
    CHECK(parse("{'__metadata__':null}", 0, &h, &e) == 0 && !h.has_meta && h.n_meta == 0,
          "null metadata: %s", e.msg);
    proto_st_header_clear(&h);
    CHECK(parse(" { 'w' : { 'dtype' : 'F16' , 'shape' : [ 3 ] , 'data_offsets' : [ 0 , 6 ] } , "
                "'__metadata__' : { 'z' : '1' , 'format' : 'pt' , '' : '' , 'a' : 'x\\ny' , "
                "'z' : '2' } } ", 6, &h, &e) == 0, "spaced, metadata last: %s", e.msg);
    CHECK(h.has_meta && h.n_meta == 5 && !strcmp(h.meta[0].key, "z") &&
          !strcmp(h.meta[0].value, "1") && !strcmp(h.meta[1].key, "format") &&
          h.meta[2].key_len == 0 && !strcmp(h.meta[3].value, "x\ny") &&
          !strcmp(h.meta[4].key, "z") && !strcmp(h.meta[4].value, "2"),
          "metadata in order, duplicates kept as written");
    proto_st_header_clear(&h);

    /* not in name order nor offset order; empty tensors share offsets; every dtype */
    static const struct {
        const char *dt;
        proto_st_dtype v;
        unsigned bits;
        bool qdq;
    } all[] = {
        { "BOOL", PROTO_ST_BOOL, 8, false },       { "U8", PROTO_ST_U8, 8, false },
        { "I8", PROTO_ST_I8, 8, false },           { "F8_E5M2", PROTO_ST_F8_E5M2, 8, false },
        { "F8_E4M3", PROTO_ST_F8_E4M3, 8, false }, { "I16", PROTO_ST_I16, 16, false },
        { "U16", PROTO_ST_U16, 16, false },        { "F16", PROTO_ST_F16, 16, true },
        { "BF16", PROTO_ST_BF16, 16, true },       { "I32", PROTO_ST_I32, 32, false },
        { "U32", PROTO_ST_U32, 32, false },        { "F32", PROTO_ST_F32, 32, true },
        { "F64", PROTO_ST_F64, 64, true },         { "I64", PROTO_ST_I64, 64, false },
        { "U64", PROTO_ST_U64, 64, false },        { "F4", PROTO_ST_F4, 4, false },
        { "F6_E2M3", PROTO_ST_F6_E2M3, 6, false }, { "F6_E3M2", PROTO_ST_F6_E3M2, 6, false },
        { "F8_E8M0", PROTO_ST_F8_E8M0, 8, false }, { "F8_E4M3FNUZ", PROTO_ST_F8_E4M3FNUZ, 8, false },
        { "F8_E5M2FNUZ", PROTO_ST_F8_E5M2FNUZ, 8, false }, { "C64", PROTO_ST_C64, 64, false },
    };
    size_t nall = sizeof all / sizeof all[0];
    CHECK(nall == PROTO_ST_NDTYPES, "every dtype listed");
    /* Tensors t<i> of shape [4, 2] (8 elements: whole bytes for 4 and 6 bits too), laid out in
     * reverse JSON order, with names in descending order. */
    char json[8192];
    size_t k = (size_t)snprintf(json, sizeof json, "{");
    uint64_t total = 0, size[PROTO_ST_NDTYPES];
    for (size_t i = 0; i < nall; i++)
        total += size[i] = 8 * all[i].bits / 8;
    uint64_t end = total;
    for (size_t i = 0; i < nall; i++) {
        k += (size_t)snprintf(json + k, sizeof json - k, "%s'%c%02zu':{'dtype':'%s','shape':"
                              "[4,2],'data_offsets':[%" PRIu64 ",%" PRIu64 "],'ignored':{'a':"
                              "[1,{'b':null}],'c':true}}", i ? "," : "", (char)('z' - i),
                              i, all[i].dt, end - size[i], end);
        end -= size[i];
    }
    /* an empty tensor at 0, one in the middle, one at the end; a scalar */
    k += (size_t)snprintf(json + k, sizeof json - k, ",'e0':{'dtype':'F32','shape':[0,5],"
                          "'data_offsets':[0,0]},'e1':{'data_offsets':[%" PRIu64 ",%" PRIu64
                          "],'shape':[3,0],'dtype':'BF16'},'e2':{'dtype':'U8','shape':[0],"
                          "'data_offsets':[%" PRIu64 ",%" PRIu64 "]},'s':{'dtype':'F64',"
                          "'shape':[],'data_offsets':[%" PRIu64 ",%" PRIu64 "]}}",
                          size[nall - 1], size[nall - 1], total, total, total, total + 8);
    CHECK(parse(json, total + 8, &h, &e) == 0, "every dtype: %s", e.msg);
    CHECK(h.n_tensors == nall + 4 && h.data_len == total + 8, "every dtype: %zu tensors",
          h.n_tensors);
    if (h.n_tensors == nall + 4) {
        static const int64_t d42[2] = { 4, 2 };
        for (size_t i = 0; i < nall; i++) {
            const proto_st_tensor *t = &h.tensors[i];
            char name[8];
            snprintf(name, sizeof name, "%c%02zu", (char)('z' - i), i);
            CHECK(!strcmp(t->name, name) && t->name_len == 3 && t->dtype == all[i].v &&
                  dims_are(t, 2, d42) && t->count == 8 && t->end - t->begin == size[i],
                  "tensor %zu in JSON order", i);
            CHECK(proto_st_dtype_bits(t->dtype) == all[i].bits &&
                  !strcmp(proto_st_dtype_name(t->dtype), all[i].dt), "dtype %s", all[i].dt);
            qdq_dtype q;
            CHECK(proto_st_dtype_qdq(t->dtype, &q) == all[i].qdq, "%s quantizable", all[i].dt);
            if (all[i].qdq)
                CHECK(proto_st_dtype_of(q) == t->dtype, "%s round trip", all[i].dt);
        }
        /* data order: e0 (empty at 0) first, then the last JSON tensor, ..., e1 among them */
        CHECK(!strcmp(h.tensors[h.by_offset[0]].name, "e0"), "e0 first: %s",
              h.tensors[h.by_offset[0]].name);
        CHECK(h.by_offset[1] == nall - 1, "then the last dtype");
        uint64_t at = 0;
        for (size_t i = 0; i < h.n_tensors; i++) {
            const proto_st_tensor *t = &h.tensors[h.by_offset[i]];
            CHECK(t->begin == at, "contiguous at %zu", i);
            at = t->end;
        }
        CHECK(!strcmp(h.tensors[h.by_offset[h.n_tensors - 1]].name, "s"), "scalar last");
        CHECK(!strcmp(h.tensors[h.by_offset[h.n_tensors - 2]].name, "e2"), "e2 before it");
        for (size_t i = 0; i < h.n_tensors; i++)
            CHECK(proto_st_find(&h, h.tensors[i].name, h.tensors[i].name_len) == (ptrdiff_t)i,
                  "find %s", h.tensors[i].name);
        CHECK(proto_st_has_name(&h, "e1") && !proto_st_has_name(&h, "e") &&
              !proto_st_has_name(&h, "e10") && !proto_st_has_name(&h, "") &&
              !proto_st_has_name(&h, "__metadata__"), "has_name");
    }
    proto_st_header_clear(&h);

    /* F4 and F6: bits packed */
    CHECK(parse("{'a':{'dtype':'F4','shape':[1,2],'data_offsets':[0,1]},"
                "'b':{'dtype':'F6_E3M2','shape':[4],'data_offsets':[1,4]}}", 4, &h, &e) == 0,
          "F4 and F6 sizes: %s", e.msg);
    proto_st_header_clear(&h);

    /* Names: escapes, UTF-8, NUL, quotes; data length not known yet. */
    CHECK(parse("{'\\u00e9t\\u00e9':{'dtype':'U8','shape':[1],'data_offsets':[0,1]},"
                "'\xc3\xa9t\xc3\xa9 2':{'dtype':'U8','shape':[1],'data_offsets':[1,2]},"
                "'a\\u0000b':{'dtype':'U8','shape':[1],'data_offsets':[2,3]},"
                "'\\'q\\' \\\\ \\/ \\ud83d\\ude00':{'dtype':'U8','shape':[1],"
                "'data_offsets':[3,4]},'a':{'dtype':'U8','shape':[1],'data_offsets':[4,5]}}",
                UNK, &h, &e) == 0, "names: %s", e.msg);
    if (h.n_tensors == 5) {
        CHECK(!strcmp(h.tensors[0].name, "\xc3\xa9t\xc3\xa9") && h.tensors[0].name_len == 5,
              "escaped UTF-8");
        CHECK(!strcmp(h.tensors[1].name, "\xc3\xa9t\xc3\xa9 2"), "raw UTF-8");
        CHECK(h.tensors[2].name_len == 3 && !memcmp(h.tensors[2].name, "a\0b", 4), "NUL");
        CHECK(!strcmp(h.tensors[3].name, "\"q\" \\ / \xf0\x9f\x98\x80"), "quotes, slashes, "
              "pair: %s", h.tensors[3].name);
        CHECK(proto_st_find(&h, "a\0b", 3) == 2 && proto_st_find(&h, "a", 1) == 4 &&
              proto_st_has_name(&h, "a"), "find with NUL");
        CHECK(h.data_len == 5 && proto_st_data_len(&h) == 5, "data_len");
        qdq_error e2 = { 0 };
        CHECK(proto_st_check_data_len(&h, 5, &e2) == 0, "check 5");
        CHECK(proto_st_check_data_len(&h, 7, &e2) == ES && strstr(e2.msg, "7 bytes") &&
              strstr(e2.msg, "'a'") && strstr(e2.msg, "2 trailing bytes"), "check 7: %s",
              e2.msg);
        memset(&e2, 0, sizeof e2);
        CHECK(proto_st_check_data_len(&h, 3, &e2) == ES && strstr(e2.msg, "2 bytes short"),
              "check 3: %s", e2.msg);
    }
    proto_st_header_clear(&h);

    /* A name in messages: cut at a character, quotes and controls shown as '?'. */
    char nm[400];
    k = (size_t)snprintf(nm, sizeof nm, "{'");
    for (int i = 0; i < 40; i++)
        k += (size_t)snprintf(nm + k, sizeof nm - k, "\xc3\xa9");
    snprintf(nm + k, sizeof nm - k, "\\u0027\\n':{'dtype':'X','shape':[],'data_offsets':[0,0]}}");
    CHECK(parse(nm, 0, &h, &e) == ES && strstr(e.msg, "\xc3\xa9?") == NULL &&
          strstr(e.msg, "...") && strstr(e.msg, "unknown dtype 'X'"), "long name: %s", e.msg);
    k = (size_t)snprintf(nm, sizeof nm, "{'x\\u0027\\n':{'dtype':'X','shape':[],"
                         "'data_offsets':[0,0]}}");
    CHECK(parse(nm, 0, &h, &e) == ES && strstr(e.msg, "tensor 'x?" "?'"), "odd name: %s", e.msg);

    /* No rank limit given: PROTO_MAX_RANK. */
    char deep[1024];
    k = (size_t)snprintf(deep, sizeof deep, "{\"w\":{\"dtype\":\"U8\",\"shape\":[");
    for (int i = 0; i < PROTO_MAX_RANK; i++)
        k += (size_t)snprintf(deep + k, sizeof deep - k, "%s1", i ? "," : "");
    snprintf(deep + k, sizeof deep - k, "],\"data_offsets\":[0,1]}}");
    memset(&e, 0, sizeof e);
    CHECK(proto_st_header_parse(deep, strlen(deep), 1, NULL, &h, &e) == 0 &&
          h.tensors[0].rank == PROTO_MAX_RANK, "rank 64 without limits: %s", e.msg);
    proto_st_header_clear(&h);
    memcpy(deep + k, ",1", 2);
    snprintf(deep + k + 2, sizeof deep - k - 2, "],\"data_offsets\":[0,1]}}");
    CHECK(proto_st_header_parse(deep, strlen(deep), 1, NULL, &h, &e) == PROTO_ETOOBIG &&
          strstr(e.msg, "more than 64 dimensions"), "rank 65: %s", e.msg);

    /* The largest tensors: 2^64 - 1 bits at most (the reference counts bits in 64 bits). */
    CHECK(parse("{'a':{'dtype':'U8','shape':[2305843009213693951],'data_offsets':[0,"
                "2305843009213693951]},'b':{'dtype':'F4','shape':[4611686018427387902],"
                "'data_offsets':[2305843009213693951,4611686018427387902]}}", UNK, &h,
                &e) == 0 && h.data_len == 4611686018427387902u, "the largest tensors: %s",
          e.msg);
    {   /* written with the longest offsets and read back the same */
        static const int64_t one[1] = { 1 };
        proto_st_extra x = { "x", PROTO_ST_F64, 1, one };
        proto_buf b = { 0 };
        proto_st_header h2;
        memset(&e, 0, sizeof e);
        CHECK(proto_st_header_write(&h, NULL, &x, 1, &b, &e) == 0, "%s", e.msg);
        CHECK(b.len > 8 && proto_st_header_parse(b.data + 8, b.len - 8, 4611686018427387910u,
                                                 &lim, &h2, &e) == 0 &&
              h2.n_tensors == 3 && h2.tensors[1].begin == 2305843009213693951u &&
              h2.tensors[2].end == 4611686018427387910u, "big offsets written: %s", e.msg);
        CHECK(b.len > 8 && strstr(b.data + 8, "\"data_offsets\":[2305843009213693951,"
                                  "4611686018427387902]}"), "offsets in full");
        proto_st_header_clear(&h2);
        proto_buf_free(&b);
    }
    proto_st_header_clear(&h);
    CHECK(parse("{'a':{'dtype':'U8','shape':[2305843009213693952],'data_offsets':[0,"
                "2305843009213693952]}}", UNK, &h, &e) == ES &&
          strstr(e.msg, "2305843009213693952 elements of 8 bits exceed 2^64 - 1 bits"),
          "2^64 bits: %s", e.msg);
    proto_st_header_clear(&h);
}

/* ---- the writer ---- */

/* The header of h as written, compared with the expected bytes (prefix included). */
static void expect_written(const proto_st_header *h, const char *policy, const proto_st_extra *x,
                           size_t nx, const char *want, size_t want_len, const char *what)
{
    proto_buf b = { 0 };
    qdq_error e = { 0 };
    int rc = proto_st_header_write(h, policy, x, nx, &b, &e);
    CHECK(rc == 0, "%s: %s", what, e.msg);
    CHECK(b.len == want_len && !memcmp(b.data, want, want_len), "%s: got %zu bytes: %.*s", what,
          b.len, b.len > 8 ? (int)b.len - 8 : 0, b.data + 8);
    proto_buf_free(&b);
}

/* The reference writer's own expected outputs (its test vectors), byte for byte. */
static void reference_vectors(void)
{
    proto_st_header h;
    qdq_error e;
    static const unsigned char attn[] = {
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
        116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
        58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
        101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125,
    };
    static const unsigned char fp4[] = {
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
        116, 121, 112, 101, 34, 58, 34, 70, 52, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
        91, 49, 44, 50, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116,
        115, 34, 58, 91, 48, 44, 49, 93, 125, 125, 32, 32, 32, 32,
    };
    static const unsigned char empty[] = { 8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32 };
    static const unsigned char meta[] = {
        40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
        95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
        116, 34, 125, 125, 32, 32, 32, 32, 32,
    };
    const struct {
        const unsigned char *file;
        size_t len;
        uint64_t data_len;
    } v[] = {
        { attn, sizeof attn, 24 }, { fp4, sizeof fp4, 1 }, { empty, sizeof empty, 0 },
        { meta, sizeof meta, 0 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint64_t n;
        memset(&e, 0, sizeof e);
        CHECK(proto_st_prefix(v[i].file, 8 + (v[i].len - 8) + v[i].data_len, &n, &e) == 0 &&
              n == v[i].len - 8, "vector %zu prefix: %s", i, e.msg);
        CHECK(proto_st_header_parse((const char *)v[i].file + 8, (size_t)n, v[i].data_len, &lim,
                                    &h, &e) == 0, "vector %zu parse: %s", i, e.msg);
        expect_written(&h, NULL, NULL, 0, (const char *)v[i].file, v[i].len, "reference vector");
        proto_st_header_clear(&h);
    }
}

static void writer(void)
{
    proto_st_header h, h2;
    qdq_error e;
    proto_buf b = { 0 };

    /* Odd names escaped as serde_json escapes them; metadata first, in its order; tensors in
     * JSON order (not data order); the policy key added last, its text escaped. */
    CHECK(parse("{'b\\u0001\\b\\f\\n\\r\\t\\u001f\\u007f':{'dtype':'U8','shape':[1],"
                "'data_offsets':[1,2]},'__metadata__':{'z':'1','a':'\\u00e9\\/'},"
                "'\\'q\\'\\\\/\xc3\xa9':{'dtype':'U8','shape':[1],'data_offsets':[0,1]}}", 2, &h,
                &e) == 0, "odd names: %s", e.msg);
    static const char want1[] =
        "{\"__metadata__\":{\"z\":\"1\",\"a\":\"\xc3\xa9/\",\"quantize_and_dequantize_v2\":"
        "\"{\\\"defaults\\\":{}}\"},\"b\\u0001\\b\\f\\n\\r\\t\\u001f\x7f\":{\"dtype\":\"U8\","
        "\"shape\":[1],\"data_offsets\":[1,2]},\"\\\"q\\\"\\\\/\xc3\xa9\":{\"dtype\":\"U8\","
        "\"shape\":[1],\"data_offsets\":[0,1]}}";
    size_t n1 = strlen(want1), pad1 = (8 - n1 % 8) % 8;
    char full[1024];
    for (int i = 0; i < 8; i++)
        full[i] = (char)((uint64_t)(n1 + pad1) >> (8 * i));
    memcpy(full + 8, want1, n1);
    memset(full + 8 + n1, ' ', pad1);
    expect_written(&h, "{\"defaults\":{}}", NULL, 0, full, 8 + n1 + pad1, "odd names");

    /* Written, then read back: the same tensors and metadata, plus the key. */
    memset(&e, 0, sizeof e);
    CHECK(proto_st_header_write(&h, "p", NULL, 0, &b, &e) == 0, "write: %s", e.msg);
    uint64_t n;
    CHECK(proto_st_prefix((const uint8_t *)b.data, b.len + 2, &n, &e) == 0 && n == b.len - 8 &&
          n % 8 == 0, "prefix of the written header");
    CHECK(proto_st_header_parse(b.data + 8, (size_t)n, 2, &lim, &h2, &e) == 0, "reread: %s",
          e.msg);
    CHECK(h2.n_tensors == 2 && h2.n_meta == 3 && !strcmp(h2.meta[2].key, PROTO_ST_POLICY_KEY) &&
          !strcmp(h2.meta[2].value, "p") && !strcmp(h2.meta[1].value, "\xc3\xa9/"),
          "reread metadata");
    for (size_t i = 0; i < h2.n_tensors && i < 2; i++)
        CHECK(h2.tensors[i].name_len == h.tensors[i].name_len &&
              !memcmp(h2.tensors[i].name, h.tensors[i].name, h.tensors[i].name_len) &&
              h2.tensors[i].begin == h.tensors[i].begin && h2.tensors[i].end == h.tensors[i].end,
              "reread tensor %zu", i);
    proto_st_header_clear(&h2);
    proto_buf_free(&b);
    proto_st_header_clear(&h);

    /* The policy key replaces an input key of its name where it stands; without a policy the
     * metadata is as it was (an empty one stays, an absent one stays absent). */
    CHECK(parse("{'__metadata__':{'a':'1','quantize_and_dequantize_v2':'old','b':'2'}}", 0, &h,
                &e) == 0, "%s", e.msg);
    static const char want2[] = "\x48\0\0\0\0\0\0\0{\"__metadata__\":{\"a\":\"1\","
                                "\"quantize_and_dequantize_v2\":\"new\",\"b\":\"2\"}}   ";
    expect_written(&h, "new", NULL, 0, want2, sizeof want2 - 1, "replaced in place");
    proto_st_header_clear(&h);
    CHECK(parse("{'__metadata__':{}}", 0, &h, &e) == 0, "%s", e.msg);
    static const char want3[] = "\x18\0\0\0\0\0\0\0{\"__metadata__\":{}}     ";
    expect_written(&h, NULL, NULL, 0, want3, sizeof want3 - 1, "empty metadata kept");
    proto_st_header_clear(&h);
    CHECK(parse("{'__metadata__':null}", 0, &h, &e) == 0, "%s", e.msg);
    static const char want4[] = "\x08\0\0\0\0\0\0\0{}      ";
    expect_written(&h, NULL, NULL, 0, want4, sizeof want4 - 1, "null metadata: none");
    static const char want5[] = "\x38\0\0\0\0\0\0\0{\"__metadata__\":{\"quantize_and_dequantize_"
                                "v2\":\"\"}}      ";
    expect_written(&h, "", NULL, 0, want5, sizeof want5 - 1, "added to none");
    proto_st_header_clear(&h);

    /* Padding: every length mod 8 pads to a multiple of 8 with spaces. */
    for (int len = 0; len < 16; len++) {
        char j[128], name[32];
        memset(name, 'n', (size_t)len);
        name[len] = 0;
        snprintf(j, sizeof j, "{'%s':{'dtype':'U8','shape':[0],'data_offsets':[0,0]}}", name);
        CHECK(parse(j, 0, &h, &e) == 0, "pad %d: %s", len, e.msg);
        memset(&e, 0, sizeof e);
        CHECK(proto_st_header_write(&h, NULL, NULL, 0, &b, &e) == 0, "pad %d", len);
        size_t body = 52 + (size_t)len, padded = (body + 7) / 8 * 8;
        CHECK(b.len == 8 + padded && (uint8_t)b.data[0] == padded &&
              !memcmp(b.data + 8 + body - 2, "}}", 2), "pad %d: %zu bytes", len, b.len);
        for (size_t i = 8 + body; i < b.len; i++)
            CHECK(b.data[i] == ' ', "pad %d: byte %zu is a space", len, i);
        b.len = 0;
        proto_st_header_clear(&h);
    }
    proto_buf_free(&b);

    /* Extra tensors: offsets continue after the data section, in order; sizes from shapes;
     * a collision with an input name is refused and leaves out as it was. */
    CHECK(parse("{'w':{'dtype':'BF16','shape':[3,2],'data_offsets':[4,16]},"
                "'v':{'dtype':'F32','shape':[],'data_offsets':[0,4]}}", 16, &h, &e) == 0, "%s",
          e.msg);
    static const int64_t three[1] = { 3 };
    proto_st_extra x[3] = {
        { "w.qdq_input_min", PROTO_ST_F32, 1, three },
        { "w.qdq_scale", PROTO_ST_F32, 0, NULL },
        { "v.qdq_input_min", PROTO_ST_F64, 0, NULL },
    };
    static const char want6[] =
        "\x38\x01\0\0\0\0\0\0{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,2],\"data_offsets\":[4,16]},"
        "\"v\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},\"w.qdq_input_min\":"
        "{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]},\"w.qdq_scale\":{\"dtype\":"
        "\"F32\",\"shape\":[],\"data_offsets\":[28,32]},\"v.qdq_input_min\":{\"dtype\":\"F64\","
        "\"shape\":[],\"data_offsets\":[32,40]}} ";
    expect_written(&h, NULL, x, 3, want6, sizeof want6 - 1, "extras");
    memset(&e, 0, sizeof e);
    CHECK(proto_st_header_write(&h, NULL, x, 3, &b, &e) == 0, "extras: %s", e.msg);
    CHECK(proto_st_header_parse(b.data + 8, b.len - 8, 40, &lim, &h2, &e) == 0 &&
          h2.n_tensors == 5 && h2.data_len == 40, "extras reread: %s", e.msg);
    proto_st_header_clear(&h2);
    b.len = 3;
    proto_st_extra clash = { "v", PROTO_ST_F32, 0, NULL };
    memset(&e, 0, sizeof e);
    CHECK(proto_st_header_write(&h, NULL, &clash, 1, &b, &e) == QDQ_EINVAL && b.len == 3 &&
          strstr(e.msg, "'v'") && strstr(e.msg, "already in the checkpoint"), "collision: %s",
          e.msg);
    static const int64_t odd[1] = { 3 };
    proto_st_extra bad = { "f4", PROTO_ST_F4, 1, odd };
    memset(&e, 0, sizeof e);
    CHECK(proto_st_header_write(&h, NULL, &bad, 1, &b, &e) == QDQ_EINVAL && b.len == 3 &&
          strstr(e.msg, "'f4'"), "misaligned extra: %s", e.msg);
    proto_buf_free(&b);
    proto_st_header_clear(&h);

    /* The format's limit holds for the answer too. */
    CHECK(parse("{}", 0, &h, &e) == 0, "%s", e.msg);
    char *huge = malloc(PROTO_ST_MAX_HEADER);
    memset(huge, 'a', PROTO_ST_MAX_HEADER - 1);
    huge[PROTO_ST_MAX_HEADER - 1] = 0;
    memset(&e, 0, sizeof e);
    CHECK(proto_st_header_write(&h, huge, NULL, 0, &b, &e) == PROTO_ETOOBIG && b.len == 0 &&
          strstr(e.msg, "limit of 100000000"), "too big: %s", e.msg);
    proto_buf_free(&b);
    free(huge);
    proto_st_header_clear(&h);
}

/* Many tensors: names found by binary search, duplicates found among thousands. */
static void many(void)
{
    enum { N = 50000 };
    proto_buf j = { 0 };
    char one[160];
    proto_buf_append(&j, "{", 1);
    for (int i = 0; i < N; i++) {
        int k = snprintf(one, sizeof one, "%s\"model.layers.%d.mlp.weight\":{\"dtype\":\"F16\","
                         "\"shape\":[2],\"data_offsets\":[%d,%d]}", i ? "," : "",
                         (i * 7919) % N, 4 * i, 4 * i + 4);
        proto_buf_append(&j, one, (size_t)k);
    }
    proto_buf_append(&j, "}", 1);
    proto_st_header h;
    qdq_error e = { 0 };
    CHECK(proto_st_header_parse(j.data, j.len, 4 * N, &lim, &h, &e) == 0 && h.n_tensors == N,
          "50000 tensors: %s", e.msg);
    int found = 0;
    for (int i = 0; i < N; i++) {
        snprintf(one, sizeof one, "model.layers.%d.mlp.weight", i);
        found += proto_st_has_name(&h, one);
        snprintf(one, sizeof one, "model.layers.%d.mlp.weight.qdq_scale", i);
        found -= proto_st_has_name(&h, one);
    }
    CHECK(found == N, "has_name: %d", found);
    proto_st_header_clear(&h);
    /* the same name twice, far apart */
    char *dup = strstr(j.data, "\"model.layers.0.mlp.weight\"");
    if (dup)
        memcpy(dup, "\"model.layers.1.mlp.weight\"", 27);
    memset(&e, 0, sizeof e);
    CHECK(proto_st_header_parse(j.data, j.len, 4 * N, &lim, &h, &e) == ES &&
          strstr(e.msg, "'model.layers.1.mlp.weight' is named twice"), "dup among many: %s",
          e.msg);
    proto_buf_free(&j);
}

int main(void)
{
    broken_rules();
    prefix();
    valid_headers();
    reference_vectors();
    writer();
    many();
    return check_done();
}
