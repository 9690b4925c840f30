"""Applications built on the engine: text classification, recommendation, date translation.

Example:
    >>> from neuralab.apps.text import FastTextClassifier
"""
