"""Configs: presets load with the documented values; every invalid field is named in the error."""

from pathlib import Path

import pytest
from tensorweave.configs import AccelConfig, ConfigError, load_config, preset_names


def base() -> dict:
    return load_config("tiny").to_dict()


def test_presets_present_and_distinct():
    names = preset_names()
    assert {"vta-default", "tiny"} <= set(names) and len(names) >= 4
    shapes = {(c.batch, c.block_in, c.block_out, c.wgt_width) for c in map(load_config, names)}
    assert len(shapes) == len(names)


def test_vta_default_matches_vta():
    c = load_config("vta-default")
    assert (c.batch, c.block_in, c.block_out) == (1, 16, 16)
    assert (c.inp_width, c.wgt_width, c.acc_width, c.out_width) == (8, 8, 32, 8)
    kib = 1024
    assert (c.uop_buffer_bytes, c.inp_buffer_bytes, c.wgt_buffer_bytes, c.acc_buffer_bytes) == (
        32 * kib, 32 * kib, 256 * kib, 128 * kib)
    # Depths and index widths as in VTA's hw_spec_const.h.
    assert (c.uop_depth, c.inp_depth, c.wgt_depth, c.acc_depth) == (8192, 2048, 1024, 2048)
    assert (c.uop_index_width, c.inp_index_width, c.wgt_index_width, c.acc_index_width) == (13, 11, 10, 11)
    assert c.macs_per_cycle == 256


def test_config_is_frozen_and_hashable():
    c = load_config("tiny")
    with pytest.raises(AttributeError):
        c.batch = 2  # type: ignore[misc]
    assert hash(c) == hash(load_config("tiny"))
    assert c.digest != load_config("vta-default").digest


@pytest.mark.parametrize("field, value, message", [
    ("block_in", 12, "field 'block_in': 12 is not allowed; allowed: a power of two from 2 to 64"),
    ("batch", 0, "field 'batch': 0 is not allowed; allowed: a power of two from 1 to 16"),
    ("inp_width", 7, "field 'inp_width': 7 is not allowed; allowed: one of 2, 4, 8"),
    ("acc_width", "32", "field 'acc_width': '32' is not allowed"),
    ("block_out", True, "field 'block_out': True is not allowed"),
    ("alu_ops", ["MIN", "DIV"], "field 'alu_ops': ['MIN', 'DIV'] is not allowed; allowed: a non-empty list"),
    ("alu_ops", [], "field 'alu_ops': [] is not allowed"),
    ("clock_mhz", 0, "field 'clock_mhz': 0 is not allowed; allowed: an integer from 1 to 2000"),
    ("bus_width", 48, "field 'bus_width': 48 is not allowed; allowed: one of 32, 64, 128, 256, 512"),
    ("uop_width", 16, "field 'uop_width': 16 is not allowed; allowed: one of 32, 64"),
    ("name", "has space", "field 'name': 'has space' is not allowed"),
    ("cmd_queue_depth", 3, "field 'cmd_queue_depth': 3 is not allowed"),
])
def test_invalid_field_named(field, value, message):
    data = base() | {field: value}
    with pytest.raises(ConfigError) as err:
        AccelConfig.from_dict(data, source="x.yaml")
    assert message in str(err.value) and str(err.value).startswith("x.yaml: ")


def test_unknown_field_suggests():
    data = base() | {"blok_in": 4}
    with pytest.raises(ConfigError, match=r"unknown field 'blok_in' \(did you mean 'block_in'\?\)"):
        AccelConfig.from_dict(data)


def test_missing_field_named():
    data = base()
    del data["acc_width"]
    with pytest.raises(ConfigError, match="missing field 'acc_width'; allowed: one of 16, 32"):
        AccelConfig.from_dict(data)


def test_buffer_smaller_than_a_row():
    data = base() | {"wgt_buffer_bytes": 8}
    with pytest.raises(ConfigError, match="field 'wgt_buffer_bytes'"):
        AccelConfig.from_dict(data)
    data = base() | {"wgt_buffer_bytes": 16, "block_in": 8}  # one 4x8 tile is 32 bytes
    with pytest.raises(ConfigError, match="field 'wgt_buffer_bytes': 16 bytes holds no wgt row of 32 bytes"):
        AccelConfig.from_dict(data)


def test_not_a_mapping(tmp_path: Path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a config is a mapping"):
        load_config(path)


def test_bad_yaml(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("batch: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="no config preset named 'nope'; presets: .*vta-default"):
        load_config("nope")


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("missing/file.yaml")


def test_load_by_path_round_trip(tmp_path: Path):
    import yaml
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(load_config("w4a8").to_dict()))
    assert load_config(path) == load_config("w4a8")
