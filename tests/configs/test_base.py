"""`base: NAME` in a config YAML: start from a preset or another file, give only what changes."""

from pathlib import Path

import pytest
from tensorweave.cli import main
from tensorweave.cli.buildable import check_buildable, fixes, load_buildable
from tensorweave.configs import AccelConfig, ConfigError, load_config
from tensorweave.isa import build_isa

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gemm_relu_shift.s"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_preset_base_with_overrides(tmp_path):
    cfg = load_config(_write(tmp_path / "fast.yaml", "base: vta-default\nclock_mhz: 150\nbus_width: 128\n"))
    default = load_config("vta-default")
    assert (cfg.clock_mhz, cfg.bus_width, cfg.name) == (150, 128, "fast")
    other = {k: v for k, v in cfg.to_dict().items() if k not in ("clock_mhz", "bus_width", "name")}
    assert other == {k: v for k, v in default.to_dict().items() if k not in ("clock_mhz", "bus_width", "name")}
    assert cfg.digest != default.digest


def test_name_given_wins_and_path_base_is_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "mid.yaml", "base: tiny\nname: middle\nacc_buffer_bytes: 8192\n")
    cfg = load_config(_write(tmp_path / "sub" / "top.yaml", "base: ../mid.yaml\nclock_mhz: 50\n"))
    tiny = load_config("tiny")
    assert (cfg.name, cfg.acc_buffer_bytes, cfg.clock_mhz, cfg.block_in) == ("top", 8192, 50, tiny.block_in)
    assert load_config(tmp_path / "mid.yaml").name == "middle"


def test_a_file_name_that_is_no_config_name_is_made_one(tmp_path):
    assert load_config(_write(tmp_path / "my fast.v2.yaml", "base: tiny\nclock_mhz: 50\n")).name == "my-fast-v2"


def test_chain_of_three_later_files_override_earlier(tmp_path):
    _write(tmp_path / "a.yaml", "base: vta-default\nclock_mhz: 120\nbus_width: 128\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\nclock_mhz: 140\n")
    cfg = load_config(_write(tmp_path / "c.yaml", "base: b.yaml\nname: see\n"))
    assert (cfg.name, cfg.clock_mhz, cfg.bus_width, cfg.block_out) == ("see", 140, 128, 16)


def test_a_cycle_is_refused_naming_the_chain(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"leads back to a config already in the chain: .*a\.yaml -> .*b\.yaml"):
        load_config(tmp_path / "a.yaml")
    _write(tmp_path / "self.yaml", "base: self.yaml\nclock_mhz: 10\n")
    with pytest.raises(ConfigError, match="leads back"):
        load_config(tmp_path / "self.yaml")


def test_unknown_base_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"field 'base': no config preset named 'vta-defualt'; presets: .*tiny"):
        load_config(_write(tmp_path / "x.yaml", "base: vta-defualt\n"))
    with pytest.raises(ConfigError, match=r"field 'base': base config file '.*missing\.yaml' does not exist"):
        load_config(_write(tmp_path / "y.yaml", "base: missing.yaml\n"))
    with pytest.raises(ConfigError, match=r"field 'base': 3 is not allowed"):
        load_config(_write(tmp_path / "z.yaml", "base: 3\n"))


def test_overrides_are_validated_and_unknown_fields_name_their_file(tmp_path):
    with pytest.raises(ConfigError, match=r"bad\.yaml: field 'block_in': 12 is not allowed; allowed: a power of two"):
        load_config(_write(tmp_path / "bad.yaml", "base: vta-default\nblock_in: 12\n"))
    _write(tmp_path / "mid.yaml", "base: tiny\nclok_mhz: 3\n")
    with pytest.raises(ConfigError, match=r"mid\.yaml: unknown field 'clok_mhz' \(did you mean 'clock_mhz'\?\)"):
        load_config(_write(tmp_path / "top.yaml", "base: mid.yaml\n"))


def test_without_base_every_field_is_still_required(tmp_path):
    with pytest.raises(ConfigError, match="missing field 'batch'"):
        load_config(_write(tmp_path / "p.yaml", "name: p\nclock_mhz: 100\n"))


# --- configs that load but cannot be built ------------------------------------------------------

def test_instruction_word_overflow_names_the_format_the_bits_and_the_changes_that_fit(tmp_path):
    path = _write(tmp_path / "big.yaml", "base: vta-default\ninp_buffer_bytes: 65536\n")
    with pytest.raises(ConfigError) as info:
        load_buildable(path)
    message = str(info.value)
    assert "big.yaml: config 'big' cannot be built" in message
    assert "GEMM format needs 130 bits and overflows the 128-bit word by 2 bits" in message
    assert "inp_buffer_bytes <= 32768 (now 65536)" in message
    # every advertised change really fits, and the next larger value of that field does not
    config = load_config(path)
    for fix in fixes(config):
        field, rest = fix.split(" <= ")
        value = int(rest.split()[0])
        build_isa(AccelConfig.from_dict({**config.to_dict(), field: value}))
        with pytest.raises(Exception, match="overflows"):
            build_isa(AccelConfig.from_dict({**config.to_dict(), field: value * 2}))
    check_buildable(load_config("vta-default"))  # a preset passes


def test_every_command_refuses_an_unbuildable_config_the_same_way(tmp_path, capsys):
    path = str(_write(tmp_path / "big.yaml", "base: vta-default\ninp_buffer_bytes: 65536\n"))
    for argv in (["config", "show", path], ["area", path], ["isa", "doc", "--config", path],
                 ["asm", str(EXAMPLE), "--config", path, "-o", str(tmp_path / "p.twp")],
                 ["hw", "verilog", "--config", path, "-o", str(tmp_path / "rtl")],
                 ["compile", "nothing.onnx", "--config", path]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "cannot be built" in err and "inp_buffer_bytes <= 32768" in err, argv
    assert not (tmp_path / "p.twp").exists() and not (tmp_path / "rtl").exists()


def test_a_three_line_config_works_in_the_commands(tmp_path, capsys):
    mine = _write(tmp_path / "mine.yaml", "base: vta-default\nclock_mhz: 150\nbus_width: 128\n")
    assert main(["config", "show", str(mine)]) == 0
    out = capsys.readouterr().out
    assert "config mine (" in out and "clock_mhz         150" in out and "bus_width         128" in out
    assert main(["isa", "doc", "--config", str(mine)]) == 0
    assert "# tensorweave ISA for `mine`" in capsys.readouterr().out
    assert main(["area", str(mine)]) == 0
    assert "resource estimate for mine" in capsys.readouterr().out
    # the example program is written for tiny's 4x4 block: a config derived from tiny runs it
    small = _write(tmp_path / "small.yaml", "base: tiny\nclock_mhz: 150\nbus_width: 128\n")
    program = tmp_path / "g.twp"
    assert main(["asm", str(EXAMPLE), "--config", str(small), "-o", str(program)]) == 0
    assert main(["sim", str(program), "--config", str(small)]) == 0
    assert "output" in capsys.readouterr().out
    assert main(["sim", str(program), "--config", "tiny"]) == 2  # a derived config is a different design
    assert "built for config 'small'" in capsys.readouterr().err


@pytest.mark.model
def test_a_three_line_config_drives_the_hardware_and_the_compiler(tmp_path, capsys):
    """The same kind of file through `hw verilog` (its bus width reaches the AXI port) and `demo`
    (quantize, compile for the accelerator, run, compare with onnxruntime)."""
    small = _write(tmp_path / "small.yaml", "base: tiny\nclock_mhz: 150\nbus_width: 128\n")
    assert main(["hw", "verilog", "--config", str(small), "-o", str(tmp_path / "rtl")]) == 0
    assert main(["hw", "verilog", "--config", "tiny", "-o", str(tmp_path / "rtl-tiny")]) == 0
    ours, theirs = ((tmp_path / d / "tensorweave_top.v").read_text() for d in ("rtl", "rtl-tiny"))
    assert "input [127:0] dram__rdata;" in ours and "input [63:0] dram__rdata;" in theirs
    capsys.readouterr()
    assert main(["demo", "--config", str(small)]) == 0
    out = capsys.readouterr().out
    assert "AGREES with onnxruntime" in out and "small" in out
