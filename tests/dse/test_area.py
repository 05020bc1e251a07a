"""The analytical resource model: hand-counted BRAM and DSP, monotonicity, and the calibration fit."""

import pytest
from tensorweave.configs import AccelConfig, load_config
from tensorweave.dse.area import (
    CALIBRATION,
    DEFAULT_COEFFICIENTS,
    ESTIMATES,
    RULE_OF_THUMB,
    AreaError,
    AreaModel,
    bram36,
    bram_count,
    dsp_count,
    estimate_area,
    features,
    fit,
    fit_from_estimates,
    measured_resources,
    yosys_samples,
)


def variant(**changes) -> AccelConfig:
    return AccelConfig.from_dict({**load_config("vta-default").to_dict(), **changes, "name": "v"})


def test_bram36_picks_the_cheapest_aspect_ratio():
    assert bram36(2048, 128) == 8      # vta-default input: 2048 x 16 B = 32 KiB = 7.1 blocks' bits -> 8
    assert bram36(1024, 2048) == 57    # weights: 1024 x 36 wide -> 57 blocks of 1024x36
    assert bram36(2048, 512) == 29     # accumulators: 2048 x 18 -> 29
    assert bram36(8192, 32) == 8       # micro-ops: 8192 x 4 -> 8
    assert bram36(16, 8) == 1


def test_vta_default_counts():
    c = load_config("vta-default")
    # the four scratchpads above, the 2048 x 128-bit output buffer (8), three 256 x 128-bit command queues
    # of 2 blocks each
    assert bram36(2048, 128) == 8
    assert bram_count(c) == 8 + 57 + 29 + 8 + 8 + 3 * 2
    # 256 int8 multipliers on DSPs, and 16 ALU lanes with a 32x32 MUL on 25x18 DSPs: 2 x 2 each
    assert dsp_count(c) == 256 + 16 * 4
    assert estimate_area(c).dsp == 320


def test_shallow_memories_go_to_lut_ram():
    tiny = load_config("tiny")  # scratchpads of 64, 32, 64 rows, a 64 x 32-bit output buffer and 16-deep
    assert bram_count(tiny) == bram36(128, 32) == 1                        # queues; micro-ops 128 deep
    assert features(tiny)["lutram_bits"] == 32 + 128 + 128 + 32 + 3 * 128


def test_narrow_multipliers_go_to_luts():
    w4 = load_config("w4a8")  # int8 x int4, no MUL in its ALU
    assert dsp_count(w4) == 0
    assert features(w4)["lut_multiplier_bits"] == 256 * 8 * 4


def test_resources_grow_with_the_gemm_core():
    small, big = estimate_area(variant(block_out=8, wgt_buffer_bytes=131072)), estimate_area(variant(block_out=32))
    assert small.lut < big.lut and small.ff <= big.ff and small.dsp < big.dsp
    assert estimate_area(variant(bus_width=256)).lut > estimate_area(variant(bus_width=64)).lut
    assert estimate_area(variant(block_in=32, wgt_buffer_bytes=524288)).fmax_mhz < estimate_area(variant()).fmax_mhz


def test_fit_recovers_coefficients_and_reports_its_error():
    truth = {r: {k: v * (1.5 if k == "tree_bits" else 0.8) for k, v in c.items()} for r, c in DEFAULT_COEFFICIENTS.items()}
    configs = [variant(block_in=bi, block_out=bo, bus_width=bus, wgt_buffer_bytes=wgt)
               for bi, bo, wgt in ((16, 16, 262144), (32, 16, 524288), (16, 32, 524288), (32, 32, 1048576))
               for bus in (64, 128, 256)]
    configs += [load_config(n) for n in ("tiny", "w4a8", "batch2-32x32")]
    measured = AreaModel(truth)
    samples = [(c, {"lut": measured.estimate(c).lut, "ff": measured.estimate(c).ff}) for c in configs]
    result = fit(samples)
    assert result.samples == len(configs)
    assert result.worst_error["lut"] < 1e-3 and result.worst_error["ff"] < 1e-3
    for c in configs:
        assert result.model.estimate(c).lut == pytest.approx(measured.estimate(c).lut, rel=1e-3)
    with pytest.raises(AreaError, match="at least one"):
        fit([])


def test_default_coefficients_are_the_fit_to_the_stored_yosys_estimates():
    """Refits on fpga/estimates and checks the shipped constants still describe those numbers
    (new estimates may move the fit a little: refit CALIBRATION when this fails)."""
    samples = yosys_samples()
    if len(samples) < 2:
        pytest.skip(f"fewer than two stored xc7 synthesis estimates of presets under {ESTIMATES}")
    result = fit_from_estimates()
    for resource, (const, scale) in CALIBRATION.items():
        refit = result.model.coefficients[resource]
        print(f"{resource}: shipped constant {const}, scale {scale}; refit {refit['const']:.1f}, "
              f"{refit['tree_bits'] / RULE_OF_THUMB[resource]['tree_bits']:.5f}")
        assert refit["const"] == pytest.approx(const, rel=0.15)
    for config, measured in samples:
        got = estimate_area(config)
        print(f"{config.name}: yosys {measured}, model {got}")
        # 4 presets from 64 to 2048 MACs: the constant-plus-scale FF fit is within 14 % (dse/area.py)
        assert got.ff == pytest.approx(measured["ff"], rel=0.15)
        assert got.lut == pytest.approx(measured["lut"], rel=0.50)  # see dse/area.py: board-fitted multipliers


def test_an_out_of_context_estimate_counts_the_luts_the_model_describes():
    """batch2-32x32's int8 products go to DSPs in the model; on a board too small for them their LUTs
    are left out (`ooc.rest`). w4a8's int4 x int8 products are LUTs in the model: the total stays."""
    data = {"resources": {"lut": 325_400, "ff": 8_300, "dsp": 149, "bram": 227},
            "ooc": {"rest": {"lut": 118_614, "ff": 8_300, "dsp": 149, "bram": 227}}}
    assert measured_resources(load_config("batch2-32x32"), data) == {**data["resources"], "lut": 118_614}
    assert measured_resources(load_config("w4a8"), data) == data["resources"]
    assert measured_resources(load_config("batch2-32x32"), {"resources": data["resources"]}) == data["resources"]
