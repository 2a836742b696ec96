/*
 * A baseline for the benchmarks (never used by the server): TensorFlow's own Eigen expression
 * for QuantizeAndDequantizeV2, float32, one range for the tensor, range_given false,
 * HALF_TO_EVEN, on an Eigen::ThreadPoolDevice, as TensorFlow's CPU kernel evaluates it:
 *
 *   min = input.minimum(); max = input.maximum();     (two reductions, each a pass)
 *   scale, inverse_scale from [min, max]              (the op's ComputeQuantizationRange)
 *   out = (input * scale).unaryExpr(round_half_to_even) * inverse_scale
 *
 * Written from docs/semantics.md ("Scale", "Each element", "Rounding"). C API below
 * (bench_core.c declares it).
 */
#define EIGEN_USE_THREADS
/* Eigen 3.4's own headers are not clean under -Wall -Wextra (the Makefile adds them with -I). */
#include <unsupported/Eigen/CXX11/Tensor>

#include <cfloat>
#include <cstddef>
#include <cstdint>

namespace {

/*
 * TensorFlow's scalar_round_half_to_even_op for a type whose packets have rint: the scalar path
 * is numext::rint, the packet path Eigen's print (_mm256_round_ps, current mode: to nearest).
 */
struct round_half_to_even {
    float operator()(const float &x) const { return Eigen::numext::rint(x); }
    template <typename Packet> Packet packetOp(const Packet &x) const
    {
        return Eigen::internal::print(x);
    }
};

} // namespace

namespace Eigen {
namespace internal {
template <> struct functor_traits<round_half_to_even> {
    enum {
        Cost = 4 * NumTraits<float>::AddCost,
        PacketAccess = packet_traits<float>::HasRint,
    };
};
} // namespace internal
} // namespace Eigen

/* TensorFlow's TTypes<float>::Vec / ConstVec. */
typedef Eigen::TensorMap<Eigen::Tensor<float, 1, Eigen::RowMajor, Eigen::DenseIndex>,
                         Eigen::Aligned>
    Vec;
typedef Eigen::TensorMap<Eigen::Tensor<const float, 1, Eigen::RowMajor, Eigen::DenseIndex>,
                         Eigen::Aligned>
    ConstVec;

struct eigen_qdq {
    Eigen::ThreadPool pool;
    Eigen::ThreadPoolDevice dev;
    explicit eigen_qdq(int threads) : pool(threads), dev(&pool, threads) {}
};

extern "C" {

/* A device with its own pool of threads; eigen_qdq_destroy frees both. */
eigen_qdq *eigen_qdq_create(int threads) { return new eigen_qdq(threads); }

void eigen_qdq_destroy(eigen_qdq *e) { delete e; }

/*
 * out := QuantizeAndDequantizeV2(in) for n float32 elements (both 16-byte aligned; out may equal
 * in), signed_input with integer range [qmin, qmax], range from the data. range[0], range[1]
 * receive the reduced min and max.
 */
void eigen_qdq_f32(eigen_qdq *e, const float *in, float *out, size_t n, int64_t qmin,
                   int64_t qmax, float range[2])
{
    ConstVec input(in, (Eigen::DenseIndex)n);
    Vec output(out, (Eigen::DenseIndex)n);
    Eigen::Tensor<float, 0, Eigen::RowMajor, Eigen::DenseIndex> mn, mx;
    mn.device(e->dev) = input.minimum();
    mx.device(e->dev) = input.maximum();
    float lo = mn(), hi = mx();
    range[0] = lo, range[1] = hi;

    /* ComputeQuantizationRange: all in float; qmin and qmax convert to float at each use. */
    float s_min = ((float)qmin * lo > 0) ? (float)qmin / lo : FLT_MAX;
    float s_max = ((float)qmax * hi > 0) ? (float)qmax / hi : FLT_MAX;
    float scale, inverse_scale;
    if (s_min < s_max) {
        scale = s_min;
        inverse_scale = lo / (float)qmin;
    } else {
        scale = s_max;
        inverse_scale = hi / (float)qmax;
    }

    output.device(e->dev) = (input * scale).unaryExpr(round_half_to_even()) * inverse_scale;
}

} // extern "C"
