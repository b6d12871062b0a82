"""``spikec compile`` flags a target declares (``Target.compile_flags``): each is one of its pass options spelled
as a flag (``spikec.cli_args.flag_pass_options``), refused with another target, with a ``--pass-option`` that sets
the same option otherwise, and when two targets declare it. The Akida target's ``--akida-version`` end to end is in
tests/test_akida_target.py; two installed distributions declaring one flag in tests/test_vendor_target.py."""

from __future__ import annotations

import argparse

import pytest

from spikec.cli_args import add_target_flags, flag_pass_options, target_flag_options
from spikec.errors import UsageError
from spikec.target import TargetFlag

BITS = TargetFlag("--chipa-bits", "quantize.weight_bits", help="weight bits", choices=("4", "8"))
ALSO_BITS = TargetFlag("--chipa-bits", "quantize.activation_bits", help="activation bits")
MODE = TargetFlag("--chipa-mode", "chipa-map.mode", help="mapping mode")
DECLARED = {"--chipa-bits": [("chipa", BITS)], "--chipa-mode": [("chipa", MODE)]}


def test_a_flag_becomes_its_pass_option_after_the_users_own() -> None:
    options = flag_pass_options({"--chipa-bits": "4"}, "chipa", ["quantize.input_max=255"], DECLARED)
    assert options == ["quantize.input_max=255", "quantize.weight_bits=4"]
    # the same value given both ways is one option
    assert flag_pass_options({"--chipa-bits": "4"}, "chipa", ["quantize.weight_bits=4"], DECLARED) == [
        "quantize.weight_bits=4"
    ]
    assert flag_pass_options({}, "chipa", ["x.y=1"], DECLARED) == ["x.y=1"]


def test_a_flag_with_another_target_names_the_flags_target() -> None:
    with pytest.raises(UsageError) as err:
        flag_pass_options({"--chipa-mode": "fast"}, "chipb", [], DECLARED)
    assert str(err.value) == (
        "--chipa-mode is a flag of target 'chipa': --target chipb does not take it; drop it, or compile with "
        "--target chipa"
    )
    assert err.value.exit_code == 2


def test_a_flag_and_a_pass_option_setting_one_option_two_ways() -> None:
    with pytest.raises(UsageError) as err:
        flag_pass_options({"--chipa-bits": "4"}, "chipa", ["quantize.weight_bits=8"], DECLARED)
    assert str(err.value) == (
        "--chipa-bits 4 and --pass-option quantize.weight_bits=8 set quantize.weight_bits two ways: give one of them"
    )
    # the values are compared as the pass's option parser reads them: spaces around '=' do not count
    assert flag_pass_options({"--chipa-bits": "4"}, "chipa", ["quantize.weight_bits = 4"], DECLARED) == [
        "quantize.weight_bits = 4"
    ]


def test_a_flag_two_targets_declare_is_refused_naming_both() -> None:
    declared = {"--chipa-bits": [("chipa", BITS), ("chipb", ALSO_BITS)]}
    with pytest.raises(UsageError) as err:
        flag_pass_options({"--chipa-bits": "4"}, "chipa", [], declared)
    assert str(err.value) == (
        "--chipa-bits is declared by targets 'chipa' and 'chipb', so it cannot say which it is for: uninstall one "
        "of their packages, or give the option it stands for (for 'chipa': --pass-option quantize.weight_bits=4; "
        "for 'chipb': --pass-option quantize.activation_bits=4)"
    )
    # the parser still takes it (so that the error above is what the user sees), its help naming both, any value
    p = argparse.ArgumentParser()
    add_target_flags(p, declared)
    assert p.parse_args(["--chipa-bits", "16"]).target_flag_chipa_bits == "16"
    assert "declared by targets 'chipa' and 'chipb'" in p.format_help()


@pytest.mark.parametrize(
    ("flag", "option", "wrong"),
    [
        ("akida-version", "quantize.ip_version", "a flag is '--' and lowercase words"),
        ("--Chip", "quantize.ip_version", "a flag is '--' and lowercase words"),
        ("--chip_version", "quantize.ip_version", "a flag is '--' and lowercase words"),
        ("--chip-version", "ip_version", "must be PASS.KEY"),
        ("--chip-version", "quantize.ip_version=1", "must be PASS.KEY"),
    ],
)
def test_a_malformed_declaration_fails_when_the_target_is_defined(flag: str, option: str, wrong: str) -> None:
    with pytest.raises(ValueError, match=wrong):
        TargetFlag(flag, option, help="h")


def test_a_flag_spikec_itself_has_is_not_added_and_its_target_is_warned(recwarn: pytest.WarningsRecorder) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--timesteps")
    shadow = TargetFlag("--timesteps", "quantize.timesteps", help="steps")
    declared = {"--timesteps": [("chipa", shadow)]}
    add_target_flags(p, declared)
    args = p.parse_args(["--timesteps", "8"])
    assert args.timesteps == "8" and not hasattr(args, shadow.dest)  # spikec's own option keeps its meaning
    assert target_flag_options(args, "chipa", [], declared) == []
    assert "target 'chipa' declares --timesteps, which is spikec compile's own option" in str(recwarn.pop().message)
