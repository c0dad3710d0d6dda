// rnn.cpp -- mode names, the workspace sizes function, and dispatch to the cell kernels.
#include "rnn.h"

namespace minirnn {

int num_gates(Mode mode) {
  switch (mode) {
    case Mode::lstm: return 4;
    case Mode::gru:
    case Mode::gru_reset_before: return 3;
    default: return 1;
  }
}

bool parse_mode(const std::string& name, Mode* mode) {
  if (name == "rnn_tanh") *mode = Mode::rnn_tanh;
  else if (name == "rnn_relu") *mode = Mode::rnn_relu;
  else if (name == "rnn_sigmoid") *mode = Mode::rnn_sigmoid;
  else if (name == "lstm") *mode = Mode::lstm;
  else if (name == "gru") *mode = Mode::gru;
  else if (name == "gru_reset_before") *mode = Mode::gru_reset_before;
  else return false;
  return true;
}

WorkspaceLayout workspace_layout(Mode mode, Sizes sz, bool for_backward) {
  const int64_t G = num_gates(mode), BH = sz.B * sz.H;
  const int64_t state_slots = for_backward ? sz.T + 1 : 2, step_slots = for_backward ? sz.T : 1;
  const int64_t gate_steps = for_backward ? sz.T : inference_chunk_steps(sz.T, sz.B);
  WorkspaceLayout L{-1, -1, -1, -1, -1, 0, state_slots, step_slots, gate_steps};
  auto carve = [&L](int64_t n) {
    const int64_t offset = L.total;
    L.total += n;
    return offset;
  };
  const bool elman = num_gates(mode) == 1;
  if (!elman) L.gates = carve(G * gate_steps * BH);
  L.hs = carve(state_slots * BH);
  if (mode == Mode::lstm) {
    L.cs = carve(state_slots * BH);
    L.tanh_c = carve(step_slots * BH);
  }
  if (mode == Mode::gru || mode == Mode::gru_reset_before) L.ghn = carve(step_slots * BH);
  return L;
}

template <typename scalar_t>
void rnn_forward(Mode mode, const ForwardArgs<scalar_t>& a) {
  switch (mode) {
    case Mode::rnn_tanh: return elman_tanh_forward(a);
    case Mode::rnn_relu: return elman_relu_forward(a);
    case Mode::rnn_sigmoid: return elman_sigmoid_forward(a);
    case Mode::lstm: return lstm_forward(a);
    case Mode::gru: return gru_forward(a);
    case Mode::gru_reset_before: return gru_reset_before_forward(a);
  }
}

template <typename scalar_t>
void rnn_backward(Mode mode, const BackwardArgs<scalar_t>& a) {
  switch (mode) {
    case Mode::rnn_tanh: return elman_tanh_backward(a);
    case Mode::rnn_relu: return elman_relu_backward(a);
    case Mode::rnn_sigmoid: return elman_sigmoid_backward(a);
    case Mode::lstm: return lstm_backward(a);
    case Mode::gru: return gru_backward(a);
    case Mode::gru_reset_before: return gru_reset_before_backward(a);
  }
}

template void rnn_forward<float>(Mode, const ForwardArgs<float>&);
template void rnn_forward<double>(Mode, const ForwardArgs<double>&);
template void rnn_backward<float>(Mode, const BackwardArgs<float>&);
template void rnn_backward<double>(Mode, const BackwardArgs<double>&);

}  // namespace minirnn
