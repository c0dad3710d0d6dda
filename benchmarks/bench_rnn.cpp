// bench_rnn.cpp -- google-benchmark timings of the fused forward and backward kernels.
//
// Legend: T time steps, B batch, I input features, H hidden units, G gates (1 Elman, 4 LSTM, 3 GRU).
// Every benchmark reports real (wall) time, since the kernels run an OpenMP team, and
// FLOPS (as G/s) of the GEMM work: forward 2*T*B*G*H*(I+H), backward twice that (dX and dW_ih
// from the input GEMM, dh and dW_hh from the recurrent one). Inputs are seeded uniform(-0.1, 0.1).
//
//   ./bench_rnn --benchmark_filter='lstm' --benchmark_min_time=0.3
#include <benchmark/benchmark.h>

#include <algorithm>
#include <exception>
#include <random>
#include <thread>
#include <vector>

#include "parallel.h"
#include "rnn.h"

namespace {

using minirnn::Mode;
using minirnn::Sizes;

// GEMM FLOPs of one forward pass; backward does twice as many.
double forward_flops(Mode mode, const Sizes& s) {
  const double G = minirnn::num_gates(mode);
  return 2.0 * s.T * s.B * G * s.H * (s.I + s.H);
}

std::vector<float> uniform(size_t n, std::mt19937* rng) {
  std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
  std::vector<float> v(n);
  for (float& e : v) e = dist(*rng);
  return v;
}

// All buffers of one layer call, filled once with seeded values.
struct Problem {
  Mode mode;
  Sizes s;
  std::vector<float> x, w_ih, w_hh, b_ih, b_hh, h0, c0, dy;              // inputs
  std::vector<float> y, h_n, c_n, workspace;                             // forward outputs
  std::vector<float> dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0;           // backward outputs

  Problem(Mode m, Sizes sizes) : mode(m), s(sizes) {
    std::mt19937 rng(1234);
    const int64_t GH = minirnn::num_gates(m) * s.H, TBH = s.T * s.B * s.H, BH = s.B * s.H;
    x = uniform(s.T * s.B * s.I, &rng);
    w_ih = uniform(GH * s.I, &rng);
    w_hh = uniform(GH * s.H, &rng);
    b_ih = uniform(GH, &rng);
    b_hh = uniform(GH, &rng);
    h0 = uniform(BH, &rng);
    c0 = uniform(BH, &rng);
    dy = uniform(TBH, &rng);
    y.resize(TBH), h_n.resize(BH), c_n.resize(BH);
    workspace.resize(minirnn::workspace_layout(m, s).total);
    dx.resize(x.size()), dw_ih.resize(w_ih.size()), dw_hh.resize(w_hh.size());
    db_ih.resize(GH), db_hh.resize(GH), dh0.resize(BH), dc0.resize(BH);
  }

  bool lstm() const { return mode == Mode::lstm; }

  void forward() {
    minirnn::ForwardArgs<float> a{y.data(),    h_n.data(),  lstm() ? c_n.data() : nullptr, workspace.data(),
                                  x.data(),    w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), h0.data(),
                                  lstm() ? c0.data() : nullptr, nullptr, s};
    minirnn::rnn_forward(mode, a);
  }

  void backward() {
    minirnn::BackwardArgs<float> a{dx.data(),   dw_ih.data(), dw_hh.data(), db_ih.data(), db_hh.data(),
                                   dh0.data(),  lstm() ? dc0.data() : nullptr,
                                   x.data(),    w_ih.data(),  w_hh.data(),  workspace.data(), dy.data(),
                                   nullptr,     nullptr,      nullptr,      s};
    minirnn::rnn_backward(mode, a);
  }
};

// state.range: T, B, I, H, threads. Times forward (backward = false) or backward alone
// (the forward pass that fills the workspace runs once before the timed loop).
void run(benchmark::State& state, Mode mode, bool backward) {
  const Sizes s{state.range(0), state.range(1), state.range(2), state.range(3)};
  minirnn::set_num_threads(static_cast<int>(state.range(4)));
  try {
    Problem p(mode, s);
    if (backward) p.forward();
    for (auto _ : state) {
      if (backward) p.backward();
      else p.forward();
      benchmark::ClobberMemory();
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const double flops = forward_flops(mode, s) * (backward ? 2.0 : 1.0);
  state.counters["FLOPS"] =
      benchmark::Counter(flops * state.iterations(), benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_forward(benchmark::State& state, Mode mode) { run(state, mode, false); }
void BM_backward(benchmark::State& state, Mode mode) { run(state, mode, true); }

// The benchmark grid of (T, B, I=H) (minirnn/bench/problem.py's FULL_GRID), at one thread and at every core.
void grid(benchmark::internal::Benchmark* b) {
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  b->ArgNames({"T", "B", "I", "H", "threads"});
  const int64_t shapes[][3] = {{100, 1, 64}, {50, 32, 128}, {100, 64, 256}, {50, 64, 512}, {100, 16, 1024}};
  for (const auto& tbh : shapes)
    for (int64_t threads : {int64_t{1}, cores}) {
      b->Args({tbh[0], tbh[1], tbh[2], tbh[2], threads});
      if (cores == 1) break;
    }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK_CAPTURE(BM_forward, rnn_tanh, Mode::rnn_tanh)->Apply(grid);
BENCHMARK_CAPTURE(BM_backward, rnn_tanh, Mode::rnn_tanh)->Apply(grid);
BENCHMARK_CAPTURE(BM_forward, lstm, Mode::lstm)->Apply(grid);
BENCHMARK_CAPTURE(BM_backward, lstm, Mode::lstm)->Apply(grid);
BENCHMARK_CAPTURE(BM_forward, gru, Mode::gru)->Apply(grid);
BENCHMARK_CAPTURE(BM_backward, gru, Mode::gru)->Apply(grid);

int main(int argc, char** argv) {
  minirnn::init_blas_threads();  // the kernels own the cores; OpenBLAS runs single-threaded inside them
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
