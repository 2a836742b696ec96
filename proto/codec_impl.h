/*
 * What the codecs share (codec.h is their interface to transports). An exchange is one struct
 * for every format: each codec uses the fields its format needs.
 */
#ifndef PROTO_CODEC_IMPL_H
#define PROTO_CODEC_IMPL_H

#include "codec.h"
#include "kserve.h"

/* A tensor starts this far into its buffer: room for a .npy header or a v2 answer's JSON in
 * front of it, so that the answer is sent from where the op computed it. */
#define PROTO_TENSOR_OFF 4096

/*
 * A tensor streamed into memory (stream.c): each piece of its bytes is copied in and folded
 * while in cache, into the min/max when the range comes from the data, or straight through the
 * op when the range is given. The raw, .npy and safetensors codecs share it.
 */
typedef struct proto_stream {
    const qdq_plan *plan;   /* planned, with acc initialised (proto_plan) */
    void *acc, *params;     /* params already made when range_given */
    bool range_given;
    char *data;             /* the tensor's bytes go here (count elements of the dtype) */
    uint64_t len, got;      /* bytes in all, and so far */
    uint64_t done_elems;    /* elements folded so far */
    qdq_stats *stats;       /* range_given: statistics of the elements applied, or NULL */
} proto_stream;

/* Copies n more bytes in and folds the elements they complete. 0, or QDQ_EINVAL when the
 * bytes run past the tensor. */
int proto_stream_feed(proto_stream *s, const char *bytes, size_t n, qdq_error *err);
/* Every byte is in: the parameters from the reduction (when the range came from the data). */
void proto_stream_params(proto_stream *s);

/*
 * A checkpoint's statistics are sums over blocks of PROTO_STATS_BLOCK elements, each block's
 * from zero, added in block order: the same bits however the work was cut (received in pieces,
 * or computed in parts on several threads), so that the server's report and qdq's agree.
 *
 * proto_apply_blocks: qdq_apply_stats over [b, e) (b on a block boundary), each block's
 * statistics into blocks[0], blocks[1], ... (NULL: none). proto_apply_merge: the same, the
 * blocks' statistics added in order into st (NULL: none).
 */
#define PROTO_STATS_BLOCK (1u << 16)
void proto_apply_blocks(const qdq_plan *plan, const void *params, const void *in, void *out,
                        uint64_t b, uint64_t e, qdq_stats *blocks);
void proto_apply_merge(const qdq_plan *plan, const void *params, const void *in, void *out,
                       uint64_t b, uint64_t e, qdq_stats *st);

/* One format's implementation of the exchange (codec.h tells when each is called). */
typedef struct proto_codec {
    proto_format format;
    int (*begin)(proto_xchg *x, const proto_args *a, qdq_error *err);
    int (*feed)(proto_xchg *x, const char *data, size_t n, qdq_error *err);
    int (*end)(proto_xchg *x, proto_work *w, qdq_error *err);
    void (*run)(proto_xchg *x, int i, int n, qdq_error *err);
    int (*answer)(proto_xchg *x, proto_answer *a, qdq_error *err);
    /* The memory the exchange may hold for a body of `body` bytes (codec.h). */
    uint64_t (*memory)(const proto_xchg *x, uint64_t body);
    /* Frees what the codec keeps of its own (x->priv); NULL when it keeps nothing. */
    void (*clear)(proto_xchg *x);
} proto_codec;

struct proto_xchg {
    const proto_codec *codec; /* NULL: the request was refused at the start */
    const proto_host *host;
    proto_format format;
    bool want_json;           /* Accept: application/json */
    uint64_t length;          /* declared body length, or PROTO_LENGTH_UNKNOWN */
    proto_request req;        /* the decoded request (native formats) */
    proto_result res;         /* plan and the op's state, once planned */
    char *tbase;              /* the tensor buffer (the host's); the tensor at PROTO_TENSOR_OFF */
    size_t tcap;
    proto_buf text;           /* a body kept whole (JSON), or a .npy header while it arrives */
    /* Streamed tensors (raw, .npy): received into tbase, reduced as they come. */
    bool tensor_ready;
    proto_stream stream;
    uint64_t tlen, got;       /* v2 direct: body bytes received */
    qdq_stats *item_stats;    /* want_stats: each work item's statistics (malloc) */
    int nitems;               /* how many items ran */
    /* KServe v2. */
    proto_v2_request *v2;
    size_t v2_header_len;     /* Inference-Header-Content-Length, or SIZE_MAX */
    bool v2_direct;           /* the body goes straight into tbase (binary, length known) */
    proto_answer ans;         /* prepared by run (single-item work), handed over by answer */
    uint64_t elements;        /* computed, for metrics */
    uint64_t st_tensors, st_bytes; /* safetensors: tensors and data bytes done, for metrics */
    void *priv;               /* a codec's own state (safetensors) */
};

extern const proto_codec proto_codec_json, proto_codec_raw, proto_codec_npy, proto_codec_v2,
    proto_codec_safetensors;

/* A buffer of PROTO_TENSOR_OFF + bytes from the host, in x->tbase: 0, or -1 when the host has
 * none (the caller records the failure in its own words). */
int proto_xchg_buffer(proto_xchg *x, uint64_t bytes);
/* Makes [start, start + len), inside x->tbase, the answer's body: the answer takes the buffer,
 * which goes back to the host (kept warm) when released. */
int proto_answer_take_buffer(proto_xchg *x, proto_answer *a, char *start, size_t len,
                             qdq_error *err);
/* Memory estimates for proto_xchg_memory: a body received into a host buffer, and a body
 * decoded from text. */
uint64_t proto_memory_buffer(uint64_t body);
uint64_t proto_memory_text(uint64_t body);
/* Counts the query arguments of a request (0 when it has none or no query at all). */
int proto_args_nquery(const proto_args *a);

#endif
