"""Layers and models: Module, Linear, activations, Dropout, norms, Residual, Sequential, MLP.

Example:
    >>> from neuralab import nn
    >>> model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
"""
from . import init
from .module import Module, Parameter
from .layers import Linear, Identity, Flatten, Dropout
from .activation import ReLU, Sigmoid, Tanh, LeakyReLU, GELU, Softmax, LogSoftmax, Step
from .normalization import BatchNorm1d, LayerNorm
from .container import Sequential, ModuleList, Residual
from .mlp import MLP
