"""The BERT encoder of the model, with mean pooling and L2 normalisation, as an ONNX graph.

Built in memory from the package's safetensors weights (the package ships no ONNX file), with the
standard operators only, so onnxruntime's optimiser can fuse attention, GELU and layer norms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

_OPSET = 18


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x: str, w: npt.NDArray[Any], b: npt.NDArray[Any], name: str) -> str:
        # torch Linear stores weight as (out, in); MatMul wants (in, out).
        wt = self.const(f"{name}.wT", np.asarray(w, dtype=np.float32).T)
        bias = self.const(f"{name}.b", np.asarray(b, dtype=np.float32))
        return self.op("Add", [self.op("MatMul", [x, wt]), bias])

    def layer_norm(
        self, x: str, w: npt.NDArray[Any], b: npt.NDArray[Any], name: str, eps: float
    ) -> str:
        scale = self.const(f"{name}.w", np.asarray(w, dtype=np.float32))
        bias = self.const(f"{name}.b", np.asarray(b, dtype=np.float32))
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def build_encoder(tensors: dict[str, npt.NDArray[Any]], config: dict[str, Any]) -> bytes:
    """The serialized model: inputs `input_ids`, `attention_mask` (int64, batch x sequence),
    output `embedding` (float32, batch x hidden, unit length)."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])
    g = _Builder()

    word = g.const("word", tensors["embeddings.word_embeddings.weight"])
    pos = g.const("pos", tensors["embeddings.position_embeddings.weight"])
    token_type = g.const("type0", tensors["embeddings.token_type_embeddings.weight"][0])
    # The first `sequence` rows of the position table: Slice by the input's own width.
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)
    positions = g.op(
        "Slice",
        [
            pos,
            g.const("i0", np.array([0], np.int64)),
            seq_len,
            g.const("axis0", np.array([0], np.int64)),
        ],
    )
    x = g.op("Add", [g.op("Gather", [word, "input_ids"]), positions])
    x = g.op("Add", [x, token_type])
    x = g.layer_norm(
        x,
        tensors["embeddings.LayerNorm.weight"],
        tensors["embeddings.LayerNorm.bias"],
        "emb_ln",
        eps,
    )

    # Padding positions get a large negative score before the softmax: batch x 1 x 1 x sequence.
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    neg = g.op(
        "Mul",
        [
            g.op("Sub", [g.const("f1", np.array(1.0, np.float32)), mask_f]),
            g.const("fneg", np.array(-1e4, np.float32)),
        ],
    )
    mask_bias = g.op("Unsqueeze", [neg, g.const("ax12", np.array([1, 2], np.int64))])
    split_shape = g.const("split", np.array([0, 0, heads, head_dim], np.int64))
    merge_shape = g.const("merge", np.array([0, 0, hidden], np.int64))
    scale = g.const("scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2.0), np.float32))
    half = g.const("half", np.array(0.5, np.float32))

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        def proj(part: str, x_in: str = x, prefix: str = p, layer: int = i) -> str:
            return g.linear(
                x_in,
                tensors[f"{prefix}attention.self.{part}.weight"],
                tensors[f"{prefix}attention.self.{part}.bias"],
                f"l{layer}.{part}",
            )

        def heads_of(t: str, perm: list[int]) -> str:
            return g.op("Transpose", [g.op("Reshape", [t, split_shape])], perm=perm)

        q = heads_of(proj("query"), [0, 2, 1, 3])
        k = heads_of(proj("key"), [0, 2, 3, 1])
        v = heads_of(proj("value"), [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask_bias])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        attn = g.linear(
            ctx,
            tensors[p + "attention.output.dense.weight"],
            tensors[p + "attention.output.dense.bias"],
            f"l{i}.attn_out",
        )
        x = g.layer_norm(
            g.op("Add", [attn, x]),
            tensors[p + "attention.output.LayerNorm.weight"],
            tensors[p + "attention.output.LayerNorm.bias"],
            f"l{i}.ln1",
            eps,
        )
        h = g.linear(
            x,
            tensors[p + "intermediate.dense.weight"],
            tensors[p + "intermediate.dense.bias"],
            f"l{i}.ffn_in",
        )
        # Exact GELU (erf), as BERT defines it; onnxruntime fuses this pattern.
        erf = g.op("Erf", [g.op("Div", [h, sqrt2])])
        h = g.op(
            "Mul",
            [
                g.op(
                    "Mul", [h, g.op("Add", [erf, g.const(f"l{i}.one", np.array(1.0, np.float32))])]
                ),
                half,
            ],
        )
        out = g.linear(
            h, tensors[p + "output.dense.weight"], tensors[p + "output.dense.bias"], f"l{i}.ffn_out"
        )
        x = g.layer_norm(
            g.op("Add", [out, x]),
            tensors[p + "output.LayerNorm.weight"],
            tensors[p + "output.LayerNorm.bias"],
            f"l{i}.ln2",
            eps,
        )

    # Mean over real tokens, then unit length (sentence-transformers' Pooling + Normalize).
    mask3 = g.op("Unsqueeze", [mask_f, g.const("ax2", np.array([2], np.int64))])
    summed = g.op(
        "ReduceSum", [g.op("Mul", [x, mask3]), g.const("ax1", np.array([1], np.int64))], keepdims=0
    )
    count = g.op("ReduceSum", [mask3, g.const("ax1b", np.array([1], np.int64))], keepdims=0)
    count = g.op("Max", [count, g.const("tiny", np.array(1e-9, np.float32))])
    mean = g.op("Div", [summed, count])
    norm = g.op("ReduceL2", [mean, g.const("ax_last", np.array([1], np.int64))], keepdims=1)
    norm = g.op("Max", [norm, g.const("tiny2", np.array(1e-12, np.float32))])
    g.nodes.append(helper.make_node("Div", [mean, norm], ["embedding"]))

    graph = helper.make_graph(
        g.nodes,
        "minilm_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
