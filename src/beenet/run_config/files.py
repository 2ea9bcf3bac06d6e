"""Run configs on disk and on the command line: presets, YAML files, ``--set a.b=value``, diffs."""


from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from beenet import atomic
from beenet.errors import ConfigError

log = logging.getLogger(__name__)


from beenet.run_config.config import OLD_KEYS, SECTIONS, RunConfig, apply_dict, check_agree, set_value, validate

# --------------------------------------------------------------------------- loading


def preset_names() -> list[str]:
    """Names of the presets shipped in ``beenet/presets``."""
    files = resources.files("beenet").joinpath("presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(path: Path | Any, where: str) -> Any:
    """The YAML mapping in ``path``; a file that is unreadable, not UTF-8 text, not YAML, or holds
    no setting at all (empty, or only comments: almost surely the wrong file) is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the config file ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); "
                          "a config is a YAML text file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    if data is None:
        raise ConfigError(f"{where}: the config file holds no settings (empty, or only comments); give a "
                          f"YAML file with sections ({', '.join(SECTIONS)}) or a preset name")
    return data


def parse_override(item: str) -> tuple[str, str]:
    """``"optim.lr=0.1"`` -> ``("optim.lr", "0.1")``."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form SECTION.KEY=VALUE (e.g. optim.lr=0.001)")
    return key.strip(), value.strip()


def apply_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """Apply ``a.b=value`` overrides in order (an old key sets its owner: both given must agree)."""
    given: dict[str, str] = {}
    for item in overrides:
        key, value = parse_override(item)
        set_value(cfg, key, value)
        given[key] = value
    for old, owner in OLD_KEYS.items():
        if old in given and owner in given:
            check_agree(old, given[old], owner, given[owner])
    if "model.body_crop" in given and "data.body_crop" not in given:
        cfg.data.body_crop = cfg.model.body_crop != "none"
    if "model.skeleton" in given and "data.skeleton" not in given:
        cfg.data.skeleton = bool(cfg.model.skeleton)
    return cfg


def load_config(name_or_path: str | os.PathLike[str] = "paper", overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A preset name (``paper``, ``demo``, ``video``) or a YAML file, then ``--set`` overrides."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.is_file() or os.sep in text:
        if not path.is_file():
            raise ConfigError(f"config file {text} does not exist; give a preset ({', '.join(preset_names())}) or a YAML file")
        where = str(path)
        data = _read_yaml(path, where)
    else:
        names = preset_names()
        if text not in names:
            raise ConfigError(f"unknown preset {text!r}; presets: {', '.join(names)} (or give a YAML file)")
        where = f"preset {text}"
        data = _read_yaml(resources.files("beenet").joinpath("presets", f"{text}.yaml"), where)
    cfg = RunConfig()
    apply_dict(cfg, data, where)
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False)


def save_yaml(cfg: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config atomically (temp file + ``os.replace``)."""
    atomic.write_text(path, "# beenet run config (resolved)\n" + to_yaml(cfg))


def config_diff(a: RunConfig, b: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two configs (for logs and ablation tables)."""
    da, db = a.to_dict(), b.to_dict()
    out: dict[str, tuple[Any, Any]] = {}
    for s in SECTIONS:
        for k in da[s]:
            if da[s][k] != db[s].get(k):
                out[f"{s}.{k}"] = (da[s][k], db[s].get(k))
    return out
