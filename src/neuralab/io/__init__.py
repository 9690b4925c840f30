"""Model files and export: ``save``/``load`` (safetensors + JSON, no pickle) and ``export_onnx``.

Example:
    >>> nl.io.save(model, "model.safetensors"); same = nl.io.load("model.safetensors")
    PosixPath('model.safetensors')
"""
from .files import OutputError, atomic_write, check_output
from .model_file import (ALLOWED_CLASSES, FORMAT_VERSION, ModelFileError, load, printable,
                         read_extra_arrays, read_metadata, save)


def export_onnx(obj, path, opset: int = 17):  # noqa: ANN001, ANN201 - see io.onnx.export_onnx
    """Export ``obj`` to ONNX (onnx is imported only here). Example: ``export_onnx(clf, "m.onnx")``"""
    from .onnx import export_onnx as _export
    return _export(obj, path, opset=opset)


def onnx_feed(model, frame):  # noqa: ANN001, ANN201 - see io.onnx.onnx_feed
    """The exported graph's inputs for a table (see ``io.onnx.onnx_feed``). Example: ``onnx_feed(m, df)``"""
    from .onnx import onnx_feed as _feed
    return _feed(model, frame)


__all__ = ["save", "load", "read_metadata", "read_extra_arrays", "export_onnx", "onnx_feed", "ModelFileError",
           "FORMAT_VERSION", "ALLOWED_CLASSES", "printable", "atomic_write", "check_output",
           "OutputError"]
