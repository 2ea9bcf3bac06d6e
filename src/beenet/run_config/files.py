"""Run configs on disk and on the command line: presets, YAML files, ``--set a.b=value``, diffs."""


from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from beenet import atomic
from beenet.errors import ConfigError

log = logging.getLogger(__name__)


from beenet.run_config.config import (
    OLD_KEYS,
    SECTIONS,
    RunConfig,
    apply_dict,
    check_agree,
    follow_owners,
    set_value,
    validate,
)

#: The value of a section that a preset takes from the weights a run starts from (``finetune``).
FROM_INIT = "init"

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


def _take_from_init(cfg: RunConfig, data: Any, where: str,
                    init_config: Callable[[], Mapping[str, Any]] | None) -> Any:
    """Give ``cfg`` the sections that ``data`` sets to ``init`` (the ``finetune`` preset's model,
    data and loss) from the config stored with the weights a run starts from (``init_config()``,
    read only when needed); returns ``data`` without them. A model taken so is built without
    ImageNet weights (``model.pretrained=false``): every weight comes from the init."""
    if not isinstance(data, dict):
        return data
    taken = [k for k, v in data.items() if v == FROM_INIT]
    if not taken:
        return data
    if init_config is None:
        raise ConfigError(f"{where}: the {', '.join(taken)} section(s) are 'init': taken from the model a run "
                          "starts from; give 'beenet train --init CHECKPOINT|FOLDER|HUB_ID'")
    saved = RunConfig.from_dict(dict(init_config()), where="the config stored with the --init weights")
    for section in taken:
        setattr(cfg, section, copy.deepcopy(getattr(saved, section)))
    if "model" in taken:
        cfg.model.pretrained = False
    follow_owners(cfg)
    return {k: v for k, v in data.items() if k not in taken}


def load_config(name_or_path: str | os.PathLike[str] = "paper", overrides: list[str] | tuple[str, ...] = (),
                init_config: Callable[[], Mapping[str, Any]] | None = None) -> RunConfig:
    """A preset name (``paper``, ``demo``, ``video``, ``finetune``) or a YAML file, then ``--set``
    overrides. A section given as ``init`` (the ``finetune`` preset) is the one stored with the
    weights ``beenet train --init`` starts from: ``init_config()`` returns that stored config."""
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
    data = _take_from_init(cfg, data, where, init_config)
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
