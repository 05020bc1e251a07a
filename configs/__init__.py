"""Accelerator configs: presets in this folder (*.yaml), loaded into a frozen `AccelConfig`."""

from .config import ALU_OPS, AccelConfig, ConfigError, clog2, load_config, preset_names

__all__ = ["ALU_OPS", "AccelConfig", "ConfigError", "clog2", "load_config", "preset_names"]
