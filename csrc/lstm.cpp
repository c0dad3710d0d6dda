// lstm.cpp -- the fused LSTM layer kernels: the shared time loop (recurrence.h) over LstmCell.
#include "lstm_cell.h"
#include "recurrence.h"

namespace minirnn {

MINIRNN_DEFINE_CELL_KERNELS(lstm, LstmCell)

}  // namespace minirnn
