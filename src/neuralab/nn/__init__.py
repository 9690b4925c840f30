"""Layers and models: Module, Linear, activations, Dropout, norms, Residual, Sequential, MLP.

Example:
    >>> from neuralab import nn
    >>> model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
"""
from .module import Module, Parameter

__all__ = ["Module", "Parameter"]
