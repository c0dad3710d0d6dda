"""Neural-network building blocks: Module, Parameter, layers, losses."""
from .container import ModuleList, Sequential  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .embedding import Embedding  # noqa: F401
from .linear import Linear  # noqa: F401
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss  # noqa: F401
from .module import Module, Parameter  # noqa: F401
from .cells import GRUCell, LSTMCell, RNNCell  # noqa: F401
from .rnn import GRU, LSTM, RNN  # noqa: F401
