"""spikec.registry: the one table type every rule-by-key registration uses."""

from __future__ import annotations

import pytest

from spikec.frontends.onnx.registry import ONNX_HANDLERS, handler
from spikec.interp.kernels import KERNELS, kernel
from spikec.ir import LIF
from spikec.registry import Registry


def test_a_key_registered_twice_is_refused_by_name() -> None:
    table: Registry[type, str] = Registry("kernel")
    table.register(LIF)("first")
    with pytest.raises(TypeError, match="kernel for LIF registered twice"):
        table.register(LIF)("second")
    assert table[LIF] == "first"


def test_the_project_tables_refuse_a_second_rule_for_a_kind_or_op() -> None:
    """A plugin claiming a node kind's kernel or an ONNX op that spikec already handles fails at import, by name,
    instead of replacing the rule for whichever module imports last."""
    with pytest.raises(TypeError, match="kernel for LIF"):
        kernel(LIF)(KERNELS[LIF])
    with pytest.raises(TypeError, match="ONNX op handler for Conv"):
        handler("Conv")(ONNX_HANDLERS["Conv"])
