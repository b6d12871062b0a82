"""Akida IP v1 layers of the dialect's ``AkidaV1Conv``/``AkidaV1Dense``: ``InputConvolutional``, ``Convolutional``,
``FullyConnected``, their variables (``weights``, ``threshold``, ``act_step``) in the engine's layouts."""

from __future__ import annotations

from typing import Any

import numpy as np

from spikec.targets.akida.dialect_v1 import AkidaV1Conv, AkidaV1Dense


def v1_weights(node: AkidaV1Conv | AkidaV1Dense, input_shape: tuple[int, ...]) -> np.ndarray:
    """SIR weights → the engine's: a conv (kH, kW, I, O), flipped for ``Convolutional`` (a real convolution;
    ``InputConvolutional`` correlates); a dense (1, 1, N, O) over the engine's (C, Y, X) flatten of its (X, Y, C)
    map, i.e. SIR's (C, W, H) (measured: the other five orders differ)."""
    w = np.asarray(node.weight)
    if isinstance(node, AkidaV1Dense):
        if len(input_shape) == 3:
            c, h, v = input_shape
            w = w.reshape(-1, c, h, v).transpose(1, 3, 2, 0).reshape(c * v * h, -1)
        else:
            w = w.T
        return w.reshape(1, 1, *w.shape).astype(np.int8)
    if not node.input_layer:
        w = w[:, :, ::-1, ::-1]
    return w.transpose(2, 3, 1, 0).astype(np.int8)


def v1_layer(akida: Any, name: str, node: AkidaV1Conv | AkidaV1Dense, shape: tuple[int, ...]) -> Any:
    """The engine's layer for ``node`` (its variables not yet set)."""
    common = dict(activation=bool(node.activation), act_bits=node.act_bits, weights_bits=node.weights_bits, name=name)
    if isinstance(node, AkidaV1Dense):
        return akida.FullyConnected(units=node.weight.shape[0], **common)
    k = node.weight.shape[2]
    padding = akida.Padding.SameUpper if node.upper else akida.Padding.Same if node.same else akida.Padding.Valid
    geometry: dict[str, Any] = dict(kernel_size=(k, k), kernel_stride=(node.stride,) * 2, padding=padding)
    if node.pool == "max":
        geometry |= dict(pool_type=akida.PoolType.Max, pool_size=(node.pool_size,) * 2,
                         pool_stride=(node.pool_stride,) * 2)  # fmt: skip
    if node.input_layer:
        c, h, v = shape
        return akida.InputConvolutional(input_shape=(h, v, c), filters=node.weight.shape[0], **geometry, **common)
    return akida.Convolutional(filters=node.weight.shape[0], **geometry, **common)


def add_v1_layer(
    akida: Any, model: Any, name: str, node: AkidaV1Conv | AkidaV1Dense, shape: tuple[int, ...], inbounds: list[Any]
) -> None:
    """Add ``node``'s layer to ``model`` and set its variables."""
    model.add(v1_layer(akida, name, node, shape), *([inbounds] if inbounds else []))
    layer = model.layers[-1]
    layer.set_variable("weights", v1_weights(node, shape))
    layer.set_variable("threshold", np.asarray(node.threshold).astype(np.int32))
    layer.set_variable("act_step", np.asarray(node.act_step).astype(np.float32))
