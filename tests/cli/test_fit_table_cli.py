"""`tensorweave fpga fit-table` where the documentation is not: an installed package has the
estimates (package data) but no docs/ folder, so the table is printed or written where asked."""

from tensorweave.cli import main
from tensorweave.fpga import fit


def test_render_to_a_file(tmp_path, capsys):
    out = tmp_path / "table.md"
    assert main(["fpga", "fit-table", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_text() == fit.render(fit.load_estimates())


def test_installed_layout_prints_the_table_and_checks_the_estimates_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fit, "TABLE", tmp_path / "no-docs" / "fpga" / "fit-table.md")
    assert main(["fpga", "fit-table"]) == 0
    assert capsys.readouterr().out == fit.render(fit.load_estimates())
    assert not (tmp_path / "no-docs").exists()
    assert main(["fpga", "fit-table", "--check", "--presets", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "(an installed package: no table to check)" in out and "(Verilog checked for tiny)" in out


def test_check_in_a_checkout_still_compares_the_table(tmp_path, monkeypatch, capsys):
    table = tmp_path / "fit-table.md"
    table.write_text("stale\n")
    monkeypatch.setattr(fit, "TABLE", table)
    monkeypatch.setattr(fit, "stale_estimates", lambda **_: [])  # the Verilog check is the test above's
    assert main(["fpga", "fit-table", "--check", "--presets", "tiny"]) == 1
    assert "is not the render of" in capsys.readouterr().out
