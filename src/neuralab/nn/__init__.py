"""Layers and models: Module, Linear, activations, Dropout, norms, Residual, Sequential, MLP.

Example:
    >>> from neuralab import nn
    >>> model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
"""
from . import init
from .module import Module, Parameter
from .layers import Linear, Identity, Flatten, Dropout
from .activation import ReLU, Sigmoid, Tanh, LeakyReLU, GELU, Softmax, LogSoftmax, Step, ACTIVATIONS, get_activation
from .normalization import BatchNorm1d, LayerNorm
from .container import Sequential, ModuleList, Residual
from .mlp import MLP
from .conv import Conv1d, Conv2d, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, BatchNorm2d, Dropout2d
from .recurrent import RNN, LSTM, GRU
from .attention import Embedding, PositionalEncoding, MultiheadAttention, TransformerEncoderLayer
from .tabular import (RobustScale, ScaleLayer, PeriodicEmbedding, NTKLinear, EnsembleLinear,
                      CategoricalEmbedding, ParametricActivation, TabularMLP)
