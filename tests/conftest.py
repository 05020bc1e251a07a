"""Markers by location: every test of tests/hw simulates the Amaranth design (`amaranth`), a few seconds
to a minute each, so the developer's loop (`make test-fast`) leaves them out; `make test` runs them."""

from pathlib import Path

import pytest

HW = Path(__file__).parent / "hw"
# tests/hw files that only build signatures or Verilog text, no simulation
HW_WITHOUT_SIMULATION = {"test_axi.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        if path.parent == HW and path.name not in HW_WITHOUT_SIMULATION:
            item.add_marker(pytest.mark.amaranth)
