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
# onnxruntime's contrib operators (MultiHeadAttention), version 1.
_MS_DOMAIN = "com.microsoft"
# int8 weights use 7 bits (onnxruntime's `reduce_range`). Without VNNI (AVX2 only, this project's
# machines), the uint8 x int8 kernel sums adjacent products in int16 (VPMADDUBSW), which saturates
# past 32,767: 255 x 127 x 2 can reach 64,770, 255 x 63 x 2 = 32,130 never does. Measured on 300
# bench texts, cosine to float32: 0.9892 at 127, 0.9899 at 63, at the same speed.
_WEIGHT_QMAX = 63.0


class _Builder:
    def __init__(self, int8: frozenset[str] = frozenset()) -> None:
        # Which linear layers (`l<layer>.<part>`, part: qkv, attn_out, ffn_in, ffn_out) run on
        # int8 weights.
        self.int8 = int8
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], domain=domain, **attrs))
        return out

    def matmul(self, x: str, w: npt.NDArray[Any], name: str) -> str:
        # torch Linear stores weight as (out, in); MatMul wants (in, out). The node is named after
        # its weights, so the quantiser can be told which MatMuls to leave in float32.
        wt = self.const(f"{name}.wT", np.asarray(w, dtype=np.float32).T)
        self.nodes.append(helper.make_node("MatMul", [x, wt], [name], name=name))
        return name

    def linear(self, x: str, w: npt.NDArray[Any], b: npt.NDArray[Any], name: str) -> str:
        bias = self.const(f"{name}.b", np.asarray(b, dtype=np.float32))
        if name in self.int8:
            return self.int8_linear(x, w, bias, name)
        return self.op("Add", [self.matmul(x, w, name), bias])

    def int8_weights(self, w: npt.NDArray[Any], name: str) -> tuple[str, str, str]:
        """w.T in int8 with one symmetric scale per output column (per-channel: one scale for the
        whole matrix is what cost accuracy): the weights, scales and zero points' names."""
        wt = np.asarray(w, dtype=np.float32).T
        scale = np.maximum(np.abs(wt).max(axis=0), 1e-12) / _WEIGHT_QMAX
        q = np.clip(np.rint(wt / scale), -_WEIGHT_QMAX, _WEIGHT_QMAX).astype(np.int8)
        return (
            self.const(f"{name}.wT.int8", q),
            self.const(f"{name}.scale", scale.astype(np.float32)),
            self.const(f"{name}.zero", np.zeros(scale.shape, np.int8)),
        )

    def int8_linear(self, x: str, w: npt.NDArray[Any], bias: str, name: str) -> str:
        """x @ w.T + b with w in int8. onnxruntime quantises x to uint8 per call from its own
        range and multiplies uint8 x int8, the VNNI instruction's shape."""
        weights, scale, zero = self.int8_weights(w, name)
        inputs = [x, weights, scale, zero, bias]
        self.nodes.append(
            helper.make_node("DynamicQuantizeMatMul", inputs, [name], name=name, domain=_MS_DOMAIN)
        )
        return name

    def int8_attention(
        self, x: str, w: npt.NDArray[Any], b: npt.NDArray[Any], mask: str, heads: int, name: str
    ) -> str:
        """Multi-head self-attention with the query/key/value projection in int8: x quantised as
        DynamicQuantizeMatMul quantises it, then onnxruntime's QAttention (the same uint8 x int8
        product, then attention, in one operator). The same vectors as DynamicQuantizeMatMul,
        Split and MultiHeadAttention (cosine 0.999999 at worst over 200 texts), ~7% more texts per
        CPU-second: no split copies of Q, K and V (docs/search.md)."""
        weights, scale, zero = self.int8_weights(w, name)
        xq, xs, xz = f"{name}.x.uint8", f"{name}.x.scale", f"{name}.x.zero"
        self.nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz]))
        bias = self.const(f"{name}.b", np.asarray(b, dtype=np.float32))
        inputs = [xq, weights, bias, xs, scale, mask, xz, zero]
        self.nodes.append(
            helper.make_node(
                "QAttention", inputs, [name], name=name, domain=_MS_DOMAIN, num_heads=heads
            )
        )
        return name

    def split3(self, x: str, sizes: str) -> tuple[str, str, str]:
        self._n += 1
        outs = [f"split_{self._n}_{j}" for j in range(3)]
        self.nodes.append(helper.make_node("Split", [x, sizes], outs, axis=-1))
        return outs[0], outs[1], outs[2]

    def layer_norm(
        self, x: str, w: npt.NDArray[Any], b: npt.NDArray[Any], name: str, eps: float
    ) -> str:
        scale = self.const(f"{name}.w", np.asarray(w, dtype=np.float32))
        bias = self.const(f"{name}.b", np.asarray(b, dtype=np.float32))
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def build_encoder(
    tensors: dict[str, npt.NDArray[Any]],
    config: dict[str, Any],
    int8: frozenset[str] = frozenset(),
) -> bytes:
    """The serialized model: inputs `input_ids`, `attention_mask` (int64, batch x sequence),
    output `embedding` (float32, batch x hidden, unit length). `int8` names the linear layers
    (`l<layer>.<part>`, part: qkv, attn_out, ffn_in, ffn_out) whose weights are quantised; the
    rest stays float32."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    eps = float(config["layer_norm_eps"])
    g = _Builder(int8)

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

    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    # onnxruntime's fused attentions take the padding mask as int32 (batch x sequence), 1 = token.
    mask_i = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2.0), np.float32))
    half = g.const("half", np.array(0.5, np.float32))
    thirds = g.const("qkv_split", np.array([hidden] * 3, np.int64))

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        # Query, key and value in one product (one pass over x, one quantisation of it when the
        # weights are int8), then onnxruntime's fused multi-head attention (softmax over the real
        # tokens only, scale 1/sqrt(head size) by default); in int8, both in one operator.
        parts = ("query", "key", "value")
        w_qkv = np.concatenate([tensors[f"{p}attention.self.{n}.weight"] for n in parts])
        b_qkv = np.concatenate([tensors[f"{p}attention.self.{n}.bias"] for n in parts])
        if f"l{i}.qkv" in int8:
            ctx = g.int8_attention(x, w_qkv, b_qkv, mask_i, heads, f"l{i}.qkv")
        else:
            q, k, v = g.split3(g.linear(x, w_qkv, b_qkv, f"l{i}.qkv"), thirds)
            ctx = g.op(
                "MultiHeadAttention", [q, k, v, "", mask_i], domain=_MS_DOMAIN, num_heads=heads
            )
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
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET), helper.make_opsetid(_MS_DOMAIN, 1)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
