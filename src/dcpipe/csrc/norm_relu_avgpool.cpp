// Instance norm (GroupNorm with one channel per group) -> ReLU -> 2x2 average pool, forward and backward, in one
// pass over each (image, channel) plane: the memory-bound chain of every ConvNet block (dcpipe.fused).
// Eager PyTorch reads and writes the full-size activation five times forward and seven backward; here a plane
// (at most 32x32) is read once from memory and again from L1.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

template <typename T>
inline float f32(T v) { return static_cast<float>(v); }

// g[j] = go[j / 2] / 4: the gradient each input of a 2x2 window gets from its pooled output.
template <typename T>
inline void expand_row(const T* go, float* g, int64_t ow) {
  for (int64_t j = 0; j < ow; ++j) g[2 * j] = g[2 * j + 1] = 0.25f * static_cast<float>(go[j]);
}

// Row conversions that vectorise: c10's BFloat16 casts are per-element calls with a NaN branch.
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

// Rows are staged in float buffers so that every inner loop is a plain vectorisable loop over a row
// (`omp simd` reductions: built with -fopenmp-simd, no fast-math).
template <typename scalar_t>
void forward_kernel(const scalar_t* x, const float* w, const float* b, scalar_t* out, float* mean, float* rstd,
                    int64_t planes, int64_t C, int64_t H, int64_t W, double eps) {
  const int64_t hw = H * W, oh = H / 2, ow = W / 2;
  at::parallel_for(0, planes, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> r0(W), f0(W), f1(W);
    for (int64_t p = begin; p < end; ++p) {
      const scalar_t* xp = x + p * hw;
      double s = 0, ss = 0;
      for (int64_t i = 0; i < H; ++i) {
        load_row(xp + i * W, f0.data(), W);
        float rs = 0.f, rss = 0.f;
#pragma omp simd reduction(+ : rs, rss)
        for (int64_t j = 0; j < W; ++j) {
          const float v = f0[j];
          rs += v;
          rss += v * v;
        }
        s += rs;
        ss += rss;
      }
      const double m = s / hw;
      const double var = std::max(ss / hw - m * m, 0.0);  // biased, as GroupNorm
      const float r = static_cast<float>(1.0 / std::sqrt(var + eps));
      mean[p] = static_cast<float>(m);
      rstd[p] = r;
      const int64_t c = p % C;
      const float scale = w[c] * r, shift = b[c] - static_cast<float>(m) * scale;
      scalar_t* op = out + p * oh * ow;
      for (int64_t i = 0; i < oh; ++i) {
        load_row(xp + (2 * i) * W, f0.data(), W);
        load_row(xp + (2 * i + 1) * W, f1.data(), W);
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) {
          r0[j] = std::max(f0[j] * scale + shift, 0.f) + std::max(f1[j] * scale + shift, 0.f);
        }
        for (int64_t j = 0; j < ow; ++j) op[i * ow + j] = static_cast<scalar_t>(0.25f * (r0[2 * j] + r0[2 * j + 1]));
      }
    }
  });
}

// dy = d(loss)/d(affine output) = go/4 where the ReLU passed; xhat = (x - mean) * rstd.
// dgamma_c = sum dy*xhat = rstd * (sum dy*x - mean * sum dy), dbeta_c = sum dy (per plane here, summed over images
// by the caller); dx = rstd * gamma * (dy - mean(dy) - xhat * mean(dy*xhat)), linear in dy and x.
template <typename scalar_t>
void backward_kernel(const scalar_t* go, const scalar_t* x, const float* w, const float* b, const float* mean,
                     const float* rstd, scalar_t* dx, float* dgamma, float* dbeta, int64_t planes, int64_t C,
                     int64_t H, int64_t W) {
  const int64_t hw = H * W, ow = W / 2;
  at::parallel_for(0, planes, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> g(W), xf(W), df(W);
    for (int64_t p = begin; p < end; ++p) {
      const scalar_t* xp = x + p * hw;
      const scalar_t* gp = go + p * (H / 2) * ow;
      const int64_t c = p % C;
      const float m = mean[p], r = rstd[p];
      const float scale = w[c] * r, shift = b[c] - m * scale;
      double sa = 0, sx = 0;
      for (int64_t i = 0; i < H; ++i) {
        if (i % 2 == 0) expand_row(gp + (i / 2) * ow, g.data(), ow);  // rows 2i and 2i+1 share it
        load_row(xp + i * W, xf.data(), W);
        const float* row = xf.data();
        float ra = 0.f, rx = 0.f;
#pragma omp simd reduction(+ : ra, rx)
        for (int64_t j = 0; j < W; ++j) {
          const float v = row[j];
          const float gj = g[j], dy = v * scale + shift > 0.f ? gj : 0.f;  // unconditional load: vectorises
          ra += dy;
          rx += dy * v;
        }
        sa += ra;
        sx += rx;
      }
      const double sb = r * (sx - m * sa);
      dgamma[p] = static_cast<float>(sb);
      dbeta[p] = static_cast<float>(sa);
      const float k = r * w[c];
      const float c1 = static_cast<float>(-k * r * sb / hw), c0 = static_cast<float>(-k * sa / hw) - c1 * m;
      scalar_t* dp = dx + p * hw;
      for (int64_t i = 0; i < H; ++i) {
        if (i % 2 == 0) expand_row(gp + (i / 2) * ow, g.data(), ow);  // rows 2i and 2i+1 share it
        load_row(xp + i * W, xf.data(), W);
        const float* row = xf.data();
        float* drow = df.data();
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) {
          const float v = row[j];
          const float gj = g[j], dy = v * scale + shift > 0.f ? gj : 0.f;  // unconditional load: vectorises
          drow[j] = k * dy + c1 * v + c0;
        }
        store_row(drow, dp + i * W, W);
      }
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "instance norm -> ReLU -> 2x2 average pool");
  m.def("backward", &backward, "its gradients: dx, dgamma, dbeta");
}
