// Instance norm (GroupNorm with one channel per group) -> ReLU -> 2x2 average pool, forward and backward, in one
// pass over each (image, channel) plane: the memory-bound chain of every ConvNet block (dcpipe.fused). Eager
// PyTorch reads and writes the full-size activation five times forward and seven backward; here a plane (at most
// 32x32 floats, 4 KB) is read once from memory into a float buffer and worked on in L1.
//
// Built with -fopenmp-simd and, where the CPU has it, -march=x86-64-v3 (dcpipe.fused.build_flags); no fast-math.
// Reductions use GCC vector extensions with several accumulators: GCC keeps an `omp simd reduction` accumulator on
// the stack without fast-math, and one accumulator waits on the add's latency every vector.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

// Conversions that vectorise: c10's BFloat16 casts are per-element calls with a NaN branch.
inline void load_row(const float* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
inline void load_row(const c10::BFloat16* src, float* dst, int64_t n) {
  const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) d[j] = static_cast<uint32_t>(s[j]) << 16;
}
inline void store_row(const float* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
inline void store_row(const float* src, c10::BFloat16* dst, int64_t n) {  // round to nearest even; NaN stays NaN
  const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
  uint16_t* d = reinterpret_cast<uint16_t*>(dst);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t u = s[j];
    const uint16_t rounded = static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    d[j] = (u & 0x7FFFFFFFu) > 0x7F800000u ? static_cast<uint16_t>((u >> 16) | 0x40u) : rounded;
  }
}

// L floats per vector: eight with AVX (x86-64-v3), else four (SSE2, NEON), the registers the target has.
#ifdef __AVX__
constexpr int L = 8;
#else
constexpr int L = 4;
#endif
typedef float fv __attribute__((vector_size(4 * L)));
inline fv loadv(const float* p) {
  fv v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void storev(float* p, fv v) { std::memcpy(p, &v, sizeof v); }
inline float lanes(fv v) {
  float s = 0.f;
  for (int k = 0; k < L; ++k) s += v[k];
  return s;
}

inline float sum(const float* a, int64_t n) {
  fv acc[4] = {};
  int64_t t = 0;
  for (; t + 4 * L <= n; t += 4 * L)
    for (int k = 0; k < 4; ++k) acc[k] += loadv(a + t + L * k);
  for (; t + L <= n; t += L) acc[0] += loadv(a + t);
  float s = lanes((acc[0] + acc[1]) + (acc[2] + acc[3]));
  for (; t < n; ++t) s += a[t];
  return s;
}

inline float centred_sum_of_squares(const float* a, float m, int64_t n) {
  fv acc[4] = {};
  int64_t t = 0;
  for (; t + 4 * L <= n; t += 4 * L)
    for (int k = 0; k < 4; ++k) {
      const fv c = loadv(a + t + L * k) - m;
      acc[k] += c * c;
    }
  for (; t + L <= n; t += L) {
    const fv c = loadv(a + t) - m;
    acc[0] += c * c;
  }
  float s = lanes((acc[0] + acc[1]) + (acc[2] + acc[3]));
  for (; t < n; ++t) s += (a[t] - m) * (a[t] - m);
  return s;
}

// A plane of OH x OW pixels is held with row stride `stride` >= OW; the columns past OW are scratch, and `span`
// ((OH - 1) * stride + OW) is the flat extent. The plain op has stride = OW (no scratch); the conv op has the
// padded input's stride (below).
struct Plane {
  int64_t OH, OW, stride, span, hw;
  Plane(int64_t oh, int64_t ow, int64_t st) : OH(oh), OW(ow), stride(st), span((oh - 1) * st + ow), hw(oh * ow) {}
};

// mean and 1/sqrt(biased variance + eps) in two passes over the plane, as GroupNorm; the scratch pixels must be
// 0: they add 0 to the sum and m^2 each to the centred squares, which are taken off.
inline void plane_stats(const float* v, const Plane& P, double eps, float* mean, float* rstd) {
  const float m = sum(v, P.span) / P.hw;
  const double scratch = static_cast<double>(P.span - P.hw) * m * m;
  const double var = std::max((centred_sum_of_squares(v, m, P.span) - scratch) / P.hw, 0.0);
  *mean = m;
  *rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
}

// q (OH/2 x OW/2) = the 2x2 average of max(v * scale + shift, 0).
inline void pool_plane(const float* v, const Plane& P, float scale, float shift, float* r0, float* q) {
  const int64_t ow = P.OW / 2;
  for (int64_t i = 0; i < P.OH / 2; ++i) {
    const float* f0 = v + 2 * i * P.stride;
    const float* f1 = f0 + P.stride;
#pragma omp simd
    for (int64_t j = 0; j < P.OW; ++j) r0[j] = std::max(f0[j] * scale + shift, 0.f) + std::max(f1[j] * scale + shift, 0.f);
#pragma omp simd
    for (int64_t j = 0; j < ow; ++j) q[i * ow + j] = 0.25f * (r0[2 * j] + r0[2 * j + 1]);
  }
}

// dy = d(loss)/d(affine output) = go/4 where the ReLU passed; xhat = (x - mean) * rstd.
// dgamma_c = sum dy*xhat = rstd * (sum dy*x - mean * sum dy), dbeta_c = sum dy (per plane here, summed over images
// by the caller); dx = rstd * gamma * (dy - mean(dy) - xhat * mean(dy*xhat)), linear in dy and x.
// v: the norm's input plane; gq: the pooled gradient (OH/2 x OW/2); d: the plane's gradient out, its scratch
// columns 0 on entry and on return.
inline void plane_backward(const float* v, const float* gq, const Plane& P, float m, float r, float gamma, float beta,
                           float* d, float* dgamma, float* dbeta) {
  const int64_t ow = P.OW / 2;
  for (int64_t i = 0; i < P.OH; ++i) {  // the pooled gradient, a quarter to each input of its 2x2 window
    const float* g = gq + (i / 2) * ow;
    float* drow = d + i * P.stride;
#pragma omp simd
    for (int64_t j = 0; j < P.OW; ++j) drow[j] = 0.25f * g[j / 2];
  }
  const float scale = gamma * r, shift = beta - m * scale;
  fv av[2] = {}, xv[2] = {};
  int64_t t = 0;
  for (; t + 2 * L <= P.span; t += 2 * L)  // the ReLU's mask (scratch: 0 stays 0)
    for (int k = 0; k < 2; ++k) {
      const fv vv = loadv(v + t + L * k);
      const fv dj = vv * scale + shift > 0.f ? loadv(d + t + L * k) : fv{};
      storev(d + t + L * k, dj);
      av[k] += dj;
      xv[k] += dj * vv;
    }
  float sa = lanes(av[0] + av[1]), sx = lanes(xv[0] + xv[1]);
  for (; t < P.span; ++t) {
    const float dj = v[t] * scale + shift > 0.f ? d[t] : 0.f;
    d[t] = dj;
    sa += dj;
    sx += dj * v[t];
  }
  const float sb = r * (sx - m * sa);
  *dgamma = sb;
  *dbeta = sa;
  const float k = r * gamma;
  const float c1 = -k * r * sb / P.hw, c0 = -k * sa / P.hw - c1 * m;
  for (int64_t i = 0; i < P.OH; ++i) {  // row by row: the scratch columns stay 0
    const float* vrow = v + i * P.stride;
    float* drow = d + i * P.stride;
#pragma omp simd
    for (int64_t j = 0; j < P.OW; ++j) drow[j] = k * drow[j] + c1 * vrow[j] + c0;
  }
}

template <typename scalar_t>
void forward_kernel(const scalar_t* x, const float* w, const float* b, scalar_t* out, float* mean, float* rstd,
                    int64_t planes, int64_t C, int64_t H, int64_t W, double eps) {
  const Plane P(H, W, W);
  const int64_t oq = (H / 2) * (W / 2);
  at::parallel_for(0, planes, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> v(P.hw), r0(W), q(oq);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % C;
      load_row(x + p * P.hw, v.data(), P.hw);
      plane_stats(v.data(), P, eps, mean + p, rstd + p);
      const float scale = w[c] * rstd[p];
      pool_plane(v.data(), P, scale, b[c] - mean[p] * scale, r0.data(), q.data());
      store_row(q.data(), out + p * oq, oq);
    }
  });
}

template <typename scalar_t>
void backward_kernel(const scalar_t* go, const scalar_t* x, const float* w, const float* b, const float* mean,
                     const float* rstd, scalar_t* dx, float* dgamma, float* dbeta, int64_t planes, int64_t C,
                     int64_t H, int64_t W) {
  const Plane P(H, W, W);
  const int64_t oq = (H / 2) * (W / 2);
  at::parallel_for(0, planes, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> v(P.hw), d(P.hw), gq(oq);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % C;
      load_row(x + p * P.hw, v.data(), P.hw);
      load_row(go + p * oq, gq.data(), oq);
      plane_backward(v.data(), gq.data(), P, mean[p], rstd[p], w[c], b[c], d.data(), dgamma + p, dbeta + p);
      store_row(d.data(), dx + p * P.hw, P.hw);
    }
  });
}

// The first ConvNet block whose input needs no gradient (real images, and the fixed synthetic images a network is
// trained on): conv -> instance norm -> ReLU -> 2x2 average pool in one pass per (image, channel) plane, all in
// float. The conv output (at batch 256 on 28x28 gray images, 134 MB of fp32 planes) is never written: the forward
// keeps its statistics, and the backward recomputes each plane from the image (K*K multiply-adds a pixel, the
// image stays in L1) and turns the plane's gradient into the conv's weight gradient directly.
// xp: the zero-padded input (N, Cin, HP, WP); cw: (Cout, Cin, K, K); a stride-1 conv.
//
// The conv plane is held with the input's row stride WP: then output t of tap (ci, ki, kj) reads
// xn[t + ci * HP * WP + ki * WP + kj], one flat loop over the plane; row by row, the 32-wide loops cost more in
// overhead than in arithmetic. The span stops before the last row's scratch, so no read leaves the image.
struct ConvShape {
  int64_t Cin, HP, WP, K, taps;
  Plane P;
  std::vector<int64_t> off;  // tap k's offset in the image
  ConvShape(int64_t cin, int64_t hp, int64_t wp, int64_t k)
      : Cin(cin), HP(hp), WP(wp), K(k), taps(cin * k * k), P(hp - k + 1, wp - k + 1, wp) {
    for (int64_t ci = 0; ci < Cin; ++ci)
      for (int64_t ki = 0; ki < K; ++ki)
        for (int64_t kj = 0; kj < K; ++kj) off.push_back(ci * HP * WP + ki * WP + kj);
  }
};

// The conv plane, L outputs at a time with every tap's sum in one register. The taps are known at compile time
// for the ConvNet's 3x3 gray conv (T = 9: weights and offsets stay in registers); T = 0 loops over them at runtime.
template <int T>
void conv_plane(const float* xn, const float* wc, float bias, const ConvShape& s, float* v) {
  const int64_t taps = T ? T : s.taps;
  fv wk[T ? T : 1];
  int64_t ok[T ? T : 1];
  for (int k = 0; k < T; ++k) {
    wk[k] = fv{} + wc[k];
    ok[k] = s.off[k];
  }
  int64_t t = 0;
  for (; t + L <= s.P.span; t += L) {
    fv acc = fv{} + bias;
    if (T) {
      for (int k = 0; k < T; ++k) acc += wk[k] * loadv(xn + ok[k] + t);
    } else {
      for (int64_t k = 0; k < taps; ++k) acc += wc[k] * loadv(xn + s.off[k] + t);
    }
    storev(v + t, acc);
  }
  for (; t < s.P.span; ++t) {
    float acc = bias;
    for (int64_t k = 0; k < taps; ++k) acc += wc[k] * xn[s.off[k] + t];
    v[t] = acc;
  }
}

// dw[k] = sum_t d[t] * xn[t + off[k]] (d's scratch is 0), with every tap's partial sums in registers.
template <int T>
void conv_weight_grad(const float* d, const float* xn, const ConvShape& s, float* dw) {
  const int64_t taps = T ? T : s.taps;
  for (int64_t k0 = 0; k0 < taps; k0 += 9) {  // nine taps at a time keep their accumulators in registers
    const int64_t nk = std::min<int64_t>(9, taps - k0);
    fv acc[9] = {};
    int64_t t = 0;
    for (; t + L <= s.P.span; t += L) {
      const fv dv = loadv(d + t);
      if (T == 9) {
        for (int k = 0; k < 9; ++k) acc[k] += dv * loadv(xn + s.off[k] + t);
      } else {
        for (int64_t k = 0; k < nk; ++k) acc[k] += dv * loadv(xn + s.off[k0 + k] + t);
      }
    }
    for (int64_t k = 0; k < nk; ++k) {
      float r = lanes(acc[k]);
      for (int64_t u = t; u < s.P.span; ++u) r += d[u] * xn[s.off[k0 + k] + u];
      dw[k0 + k] = r;
    }
  }
}

template <int T>
void conv_forward_kernel(const float* xp, const float* cw, const float* cb, const float* w, const float* b, float* out,
                         float* mean, float* rstd, int64_t N, int64_t C, const ConvShape& s, double eps) {
  const Plane& P = s.P;
  const int64_t oq = (P.OH / 2) * (P.OW / 2);
  at::parallel_for(0, N * C, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> v(P.OH * P.stride), r0(P.OW);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / C, c = p % C;
      conv_plane<T>(xp + n * s.Cin * s.HP * s.WP, cw + c * s.taps, cb[c], s, v.data());
      for (int64_t i = 0; i + 1 < P.OH; ++i) std::fill(v.data() + i * P.stride + P.OW, v.data() + (i + 1) * P.stride, 0.f);
      plane_stats(v.data(), P, eps, mean + p, rstd + p);
      const float scale = w[c] * rstd[p];
      pool_plane(v.data(), P, scale, b[c] - mean[p] * scale, r0.data(), out + p * oq);
    }
  });
}

// The conv bias shifts the whole plane, which the norm takes away again: its gradient is 0 (the eager chain's
// sum of the plane's gradient is 0 up to rounding).
template <int T>
void conv_backward_kernel(const float* go, const float* xp, const float* cw, const float* cb, const float* w,
                          const float* b, const float* mean, const float* rstd, float* dcw, float* dgamma,
                          float* dbeta, int64_t N, int64_t C, const ConvShape& s) {
  const Plane& P = s.P;
  const int64_t oq = (P.OH / 2) * (P.OW / 2);
  at::parallel_for(0, N * C, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> v(P.OH * P.stride), d(P.OH * P.stride, 0.f);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / C, c = p % C;
      const float* xn = xp + n * s.Cin * s.HP * s.WP;
      conv_plane<T>(xn, cw + c * s.taps, cb[c], s, v.data());
      plane_backward(v.data(), go + p * oq, P, mean[p], rstd[p], w[c], b[c], d.data(), dgamma + p, dbeta + p);
      conv_weight_grad<T>(d.data(), xn, s, dcw + p * s.taps);
    }
  });
}

void check(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4 && x.is_contiguous(), "x: a contiguous NCHW CPU tensor");
  TORCH_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0, "x: even height and width");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16, "x: float32 or bfloat16");
  TORCH_CHECK(w.scalar_type() == torch::kFloat && b.scalar_type() == torch::kFloat && w.is_contiguous() &&
                  b.is_contiguous() && w.numel() == x.size(1) && b.numel() == x.size(1),
              "weight, bias: float32, one per channel");
}

template <typename F>
void dispatch(const torch::Tensor& x, F&& kernel) {  // float32 or bfloat16 only (check() said so)
  if (x.scalar_type() == torch::kBFloat16) {
    kernel(c10::BFloat16(0.f));
  } else {
    kernel(0.f);
  }
}

}  // namespace

std::vector<torch::Tensor> forward(torch::Tensor x, torch::Tensor w, torch::Tensor b, double eps) {
  check(x, w, b);
  const auto N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto out = torch::empty({N, C, H / 2, W / 2}, x.options());
  auto stats = x.options().dtype(torch::kFloat);
  auto mean = torch::empty({N, C}, stats), rstd = torch::empty({N, C}, stats);
  dispatch(x, [&](auto zero) {
    using scalar_t = decltype(zero);
    forward_kernel<scalar_t>(x.data_ptr<scalar_t>(), w.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<scalar_t>(),
                             mean.data_ptr<float>(), rstd.data_ptr<float>(), N * C, C, H, W, eps);
  });
  return {out, mean, rstd};
}

std::vector<torch::Tensor> backward(torch::Tensor go, torch::Tensor x, torch::Tensor w, torch::Tensor b,
                                    torch::Tensor mean, torch::Tensor rstd) {
  check(x, w, b);
  go = go.contiguous().to(x.scalar_type());
  const auto N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto dx = torch::empty_like(x);
  auto stats = x.options().dtype(torch::kFloat);
  auto dgamma = torch::empty({N, C}, stats), dbeta = torch::empty({N, C}, stats);
  dispatch(x, [&](auto zero) {
    using scalar_t = decltype(zero);
    backward_kernel<scalar_t>(go.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), w.data_ptr<float>(), b.data_ptr<float>(),
                              mean.data_ptr<float>(), rstd.data_ptr<float>(), dx.data_ptr<scalar_t>(),
                              dgamma.data_ptr<float>(), dbeta.data_ptr<float>(), N * C, C, H, W);
  });
  return {dx, dgamma.sum(0), dbeta.sum(0)};
}

void check_conv(const torch::Tensor& xp, const torch::Tensor& cw, const torch::Tensor& cb, const torch::Tensor& w,
                const torch::Tensor& b) {
  for (const auto* t : {&xp, &cw, &cb, &w, &b})
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == torch::kFloat && t->is_contiguous(),
                "conv_*: contiguous float32 CPU tensors");
  TORCH_CHECK(xp.dim() == 4 && cw.dim() == 4 && cw.size(1) == xp.size(1) && cw.size(2) == cw.size(3),
              "conv_*: xp (N, Cin, HP, WP), cw (Cout, Cin, K, K)");
  const auto OH = xp.size(2) - cw.size(2) + 1, OW = xp.size(3) - cw.size(3) + 1;
  TORCH_CHECK(OH > 0 && OW > 0 && OH % 2 == 0 && OW % 2 == 0, "conv_*: an even, non-empty conv output");
  TORCH_CHECK(cb.numel() == cw.size(0) && w.numel() == cw.size(0) && b.numel() == cw.size(0),
              "conv_*: one bias, weight and norm bias per output channel");
}

std::vector<torch::Tensor> conv_forward(torch::Tensor xp, torch::Tensor cw, torch::Tensor cb, torch::Tensor w,
                                        torch::Tensor b, double eps) {
  check_conv(xp, cw, cb, w, b);
  const ConvShape cs(xp.size(1), xp.size(2), xp.size(3), cw.size(2));
  const auto N = xp.size(0), C = cw.size(0);
  auto out = torch::empty({N, C, cs.P.OH / 2, cs.P.OW / 2}, xp.options());
  auto mean = torch::empty({N, C}, xp.options()), rstd = torch::empty({N, C}, xp.options());
  const auto kernel = cs.Cin == 1 && cs.K == 3 ? conv_forward_kernel<9> : conv_forward_kernel<0>;
  kernel(xp.data_ptr<float>(), cw.data_ptr<float>(), cb.data_ptr<float>(), w.data_ptr<float>(),
                      b.data_ptr<float>(), out.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(), N, C,
                      cs, eps);
  return {out, mean, rstd};
}

std::vector<torch::Tensor> conv_backward(torch::Tensor go, torch::Tensor xp, torch::Tensor cw, torch::Tensor cb,
                                         torch::Tensor w, torch::Tensor b, torch::Tensor mean, torch::Tensor rstd) {
  check_conv(xp, cw, cb, w, b);
  go = go.contiguous().to(torch::kFloat);
  const ConvShape cs(xp.size(1), xp.size(2), xp.size(3), cw.size(2));
  const auto N = xp.size(0), C = cw.size(0);
  auto dcw = torch::empty({N, C, cs.Cin, cs.K, cs.K}, xp.options());
  auto dgamma = torch::empty({N, C}, xp.options()), dbeta = torch::empty({N, C}, xp.options());
  const auto kernel = cs.Cin == 1 && cs.K == 3 ? conv_backward_kernel<9> : conv_backward_kernel<0>;
  kernel(go.data_ptr<float>(), xp.data_ptr<float>(), cw.data_ptr<float>(), cb.data_ptr<float>(),
                       w.data_ptr<float>(), b.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                       dcw.data_ptr<float>(), dgamma.data_ptr<float>(), dbeta.data_ptr<float>(),
                       N, C, cs);
  return {dcw.sum(0), torch::zeros_like(cb), dgamma.sum(0), dbeta.sum(0)};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "instance norm -> ReLU -> 2x2 average pool");
  m.def("backward", &backward, "its gradients: dx, dgamma, dbeta");
  m.def("conv_forward", &conv_forward, "stride-1 conv (pre-padded input) -> instance norm -> ReLU -> 2x2 average pool");
  m.def("conv_backward", &conv_backward, "its parameter gradients: dconv_weight, dconv_bias, dgamma, dbeta");
}
