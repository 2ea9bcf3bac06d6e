"""The run configuration: one dataclass tree, YAML presets, and ``--set a.b=value`` overrides.

``RunConfig`` gathers the config of every part (data, model, loss) with the optimiser, the context
source and the run settings. It is the single source of a run's hyper-parameters: saved as
``config.yaml`` next to every run and inside every checkpoint, so a run describes itself.

Presets are flat YAML files in ``beenet/presets/`` (no inheritance: each file states the whole
run, so what a reader sees is what runs). Values given on the command line are parsed by the type
of the field they set; unknown keys and bad values raise :class:`~beenet.errors.ConfigError` that
names the key and lists what is valid.
"""

from beenet.run_config.config import (
    OLD_KEYS,
    SECTIONS,
    RunConfig,
    get_value,
    model_needs_input_context,
    needs_context,
    prepare_settings,
    set_value,
    validate,
)
from beenet.run_config.files import (
    apply_overrides,
    config_diff,
    load_config,
    parse_override,
    preset_names,
    save_yaml,
    to_yaml,
)
from beenet.run_config.sections import LossConfig, OptimConfig, RunSettings

__all__ = [
    "OLD_KEYS", "SECTIONS", "LossConfig", "OptimConfig", "RunConfig", "RunSettings", "apply_overrides",
    "config_diff", "get_value", "load_config", "model_needs_input_context", "needs_context", "parse_override",
    "preset_names", "prepare_settings", "save_yaml", "set_value", "to_yaml", "validate",
]
