"""Config files a careless user or a hostile one could write: each refused with a ConfigError naming the
file and the field or line (regressions of issue 17, finding 4), never a traceback."""

import pytest
from tensorweave.configs import ConfigError, load_config
from tensorweave.configs.config import PRESET_DIR, read_yaml
from tensorweave.configs.yaml_safe import MAX_DEPTH

TINY = (PRESET_DIR / "tiny.yaml").read_text()


def write(tmp_path, text: str | bytes, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_row_under_one_byte_is_named(tmp_path):
    """block_in 2 x inp_width 2 is a 4-bit input row: was ZeroDivisionError computing the depth."""
    path = write(tmp_path, TINY.replace("block_in: 4", "block_in: 2").replace("inp_width: 8", "inp_width: 2"))
    with pytest.raises(ConfigError, match=r"c.yaml: field 'inp_width': one inp row \(batch x block_in values of "
                                          r"inp_width bits\) is 4 bits, not a whole number of bytes"):
        load_config(path)


def test_nested_list_in_alu_ops_is_named(tmp_path):
    """Was TypeError: unhashable type: 'list'."""
    path = write(tmp_path, TINY.replace("alu_ops: [MIN, MAX, ADD, SHR, MUL, RSHR]", "alu_ops: [[MIN], MAX]"))
    with pytest.raises(ConfigError, match=r"field 'alu_ops': \[\['MIN'\], 'MAX'\] is not allowed; allowed: a "
                                          "non-empty list without repeats"):
        load_config(path)


def test_duplicate_key_names_key_and_lines(tmp_path):
    """Was accepted, the last value winning silently."""
    path = write(tmp_path, TINY + "batch: 2\n")
    first = TINY.splitlines().index("batch: 1") + 1
    last = len(TINY.splitlines()) + 1
    with pytest.raises(ConfigError, match=fr"c.yaml: line {last}: key 'batch' is given twice \(first on line {first}\)"):
        load_config(path)


def test_duplicate_key_in_a_nested_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"line 2: key 'a' is given twice \(first on line 2\)"):
        read_yaml(write(tmp_path, "x: 1\ny: {a: 1, a: 2}\n"), ConfigError, "config file")


def test_binary_file_is_refused(tmp_path):
    """Was UnicodeDecodeError."""
    path = write(tmp_path, bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"c.yaml: a binary file, not YAML text"):
        load_config(path)


def test_utf16_with_byte_order_mark_reads_like_utf8(tmp_path):
    """Was UnicodeDecodeError: YAML allows UTF-16 with a byte-order mark; without one it is refused."""
    assert load_config(write(tmp_path, TINY.encode("utf-16"))) == load_config("tiny")
    with pytest.raises(ConfigError, match="c.yaml: a binary file"):
        load_config(write(tmp_path, TINY.encode("utf-16-le")))


def test_invalid_utf8_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML: .*invalid continuation byte in \".*c.yaml\", position"):
        load_config(write(tmp_path, TINY.encode() + b"name: \xc3\x28\n"))


def test_deep_nesting_is_refused(tmp_path):
    """Was RecursionError from the YAML composer."""
    path = write(tmp_path, "alu_ops: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=fr"c.yaml: line 1: nested more than {MAX_DEPTH} levels deep"):
        load_config(path)


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "\n".join(f"{line.split(':')[0]}: &a{i} {line.split(': ', 1)[1]}" for i, line in enumerate(lines))
    with pytest.raises(ConfigError, match="expands to more than 200000 values"):
        load_config(write(tmp_path, text + "\n"))


def test_python_tags_and_bad_dates_are_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML: could not determine a constructor"):
        load_config(write(tmp_path, "name: !!python/object/apply:os.system [ls]\n"))
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML \(ValueError: month must be in 1..12\)"):
        load_config(write(tmp_path, TINY + "x: 2001-13-45\n"))


def test_huge_values_shown_short(tmp_path):
    path = write(tmp_path, TINY.replace("alu_ops: [MIN, MAX, ADD, SHR, MUL, RSHR]", "alu_ops: [" + "MIN, " * 5000 + "]"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert len(str(err.value)) < 400 and "'MIN', ...]" in str(err.value)


def test_unreadable_path_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file .* does not exist"):
        load_config(tmp_path / "nope.yaml")
