// test_kernels_fd.cpp -- every backward output of every mode against central finite
// differences of a scalar loss, float64, small sizes, unsorted lengths (0 and T included),
// with and without bias, at 1 and 2 threads. Exits nonzero on any mismatch.
//
// Loss: L = sum(y * wy) + sum(h_n * wh) + sum(c_n * wc) with fixed random weights, so
// dL/dy = wy, dL/dh_n = wh, dL/dc_n = wc are what rnn_backward receives.
//
// Legend: T time steps, B batch, I input features, H hidden units, G gates.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "parallel.h"
#include "rnn.h"

using namespace minirnn;
using Vec = std::vector<double>;

namespace {

struct Problem {
  Mode mode;
  bool bias;
  Sizes sz;
  std::vector<int64_t> lengths;           // (B)
  Vec x, w_ih, w_hh, b_ih, b_hh, h0, c0;  // the inputs
  Vec wy, wh, wc;                         // the loss weights
};

Vec random_vec(std::mt19937_64& rng, size_t n, double scale) {
  std::uniform_real_distribution<double> u(-scale, scale);
  Vec v(n);
  for (double& e : v) e = u(rng);
  return v;
}

const double* opt(const Vec& v) { return v.empty() ? nullptr : v.data(); }

// Runs the forward pass; returns L and leaves the outputs in y/h_n/c_n/ws.
double forward_loss(const Problem& p, Vec& y, Vec& h_n, Vec& c_n, Vec& ws) {
  const Sizes s = p.sz;
  const bool lstm = p.mode == Mode::lstm;
  y.assign(s.T * s.B * s.H, 0.0);
  h_n.assign(s.B * s.H, 0.0);
  c_n.assign(lstm ? s.B * s.H : 0, 0.0);
  ws.assign(workspace_layout(p.mode, s).total, 0.0);
  ForwardArgs<double> a{y.data(),    h_n.data(),  lstm ? c_n.data() : nullptr, ws.data(), p.x.data(),
                        p.w_ih.data(), p.w_hh.data(), opt(p.b_ih), opt(p.b_hh), p.h0.data(),
                        opt(p.c0),   p.lengths.data(), s};
  rnn_forward(p.mode, a);
  double L = 0;
  for (size_t k = 0; k < y.size(); k++) L += y[k] * p.wy[k];
  for (size_t k = 0; k < h_n.size(); k++) L += h_n[k] * p.wh[k];
  for (size_t k = 0; k < c_n.size(); k++) L += c_n[k] * p.wc[k];
  return L;
}

double loss(const Problem& p) {
  Vec y, h_n, c_n, ws;
  return forward_loss(p, y, h_n, c_n, ws);
}

// Compares one analytic gradient with central differences of the loss w.r.t. `param`.
int check(Problem& p, Vec& param, const Vec& grad, const std::string& what) {
  const double eps = 1e-6, tol = 1e-6;
  int bad = 0;
  for (size_t k = 0; k < param.size(); k++) {
    const double saved = param[k];
    param[k] = saved + eps;
    const double up = loss(p);
    param[k] = saved - eps;
    const double down = loss(p);
    param[k] = saved;
    const double numeric = (up - down) / (2 * eps);
    if (!(std::fabs(numeric - grad[k]) <= tol * (1 + std::fabs(numeric)))) {
      if (bad < 5)
        std::printf("  MISMATCH %s[%zu]: analytic %.10g, finite difference %.10g\n", what.c_str(), k, grad[k],
                    numeric);
      bad++;
    }
  }
  return bad;
}

int run_case(Mode mode, const char* name, bool bias, int threads) {
  std::mt19937_64 rng(42);
  const Sizes s{4, 4, 3, 5};
  const int64_t G = num_gates(mode);
  const bool lstm = mode == Mode::lstm;
  Problem p{mode, bias, s, {2, 4, 0, 3}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  p.x = random_vec(rng, s.T * s.B * s.I, 1.0);
  p.w_ih = random_vec(rng, G * s.H * s.I, 0.6);
  p.w_hh = random_vec(rng, G * s.H * s.H, 0.6);
  if (bias) {
    p.b_ih = random_vec(rng, G * s.H, 0.5);
    p.b_hh = random_vec(rng, G * s.H, 0.5);
  }
  p.h0 = random_vec(rng, s.B * s.H, 0.5);
  if (lstm) p.c0 = random_vec(rng, s.B * s.H, 0.5);
  p.wy = random_vec(rng, s.T * s.B * s.H, 1.0);
  p.wh = random_vec(rng, s.B * s.H, 1.0);
  if (lstm) p.wc = random_vec(rng, s.B * s.H, 1.0);

  set_num_threads(threads);
  set_min_step_work(0);  // split even these tiny time loops over every thread
  Vec y, h_n, c_n, ws;
  forward_loss(p, y, h_n, c_n, ws);
  Vec dx(p.x.size()), dw_ih(p.w_ih.size()), dw_hh(p.w_hh.size()), db_ih(p.b_ih.size()), db_hh(p.b_hh.size()),
      dh0(p.h0.size()), dc0(p.c0.size());
  BackwardArgs<double> a{dx.data(),    dw_ih.data(), dw_hh.data(),     bias ? db_ih.data() : nullptr,
                         bias ? db_hh.data() : nullptr,           dh0.data(),  lstm ? dc0.data() : nullptr,
                         p.x.data(),   p.w_ih.data(), p.w_hh.data(),   ws.data(),   p.wy.data(),
                         p.wh.data(),  lstm ? p.wc.data() : nullptr,   p.lengths.data(), s};
  rnn_backward(mode, a);

  int bad = check(p, p.x, dx, "dx") + check(p, p.w_ih, dw_ih, "dw_ih") + check(p, p.w_hh, dw_hh, "dw_hh") +
            check(p, p.h0, dh0, "dh0");
  if (bias) bad += check(p, p.b_ih, db_ih, "db_ih") + check(p, p.b_hh, db_hh, "db_hh");
  if (lstm) bad += check(p, p.c0, dc0, "dc0");
  std::printf("%-4s %-9s bias=%d threads=%d: %s\n", bad ? "FAIL" : "ok", name, bias, threads,
              bad ? (std::to_string(bad) + " mismatches").c_str() : "all gradients match");
  return bad;
}

}  // namespace

int main() {
  init_blas_threads();
  const std::pair<Mode, const char*> modes[] = {
      {Mode::rnn_tanh, "rnn_tanh"}, {Mode::rnn_relu, "rnn_relu"},         {Mode::rnn_sigmoid, "rnn_sigmoid"},
      {Mode::lstm, "lstm"},         {Mode::gru, "gru"}, {Mode::gru_reset_before, "gru_reset_before"}};
  int bad = 0;
  for (const auto& [mode, name] : modes)
    for (bool bias : {true, false})
      for (int threads : {1, 2}) bad += run_case(mode, name, bias, threads);
  std::printf(bad ? "FAILED: %d mismatches\n" : "PASSED\n", bad);
  return bad ? 1 : 0;
}
