"""``beenet train --init``: a new run starts from a trained model's weights (not its optimizer)."""

from __future__ import annotations

import json

import pytest
import torch

from beenet.artifacts.checkpoint import load_checkpoint
from beenet.artifacts.share import export_pretrained
from beenet.cli import main
from beenet.weights import file_sha256
from train_helpers import TINY, restore_root_logging, write_tiny_synth

_restore_logging = pytest.fixture(autouse=True)(restore_root_logging)


def _sets(extra: list[str] = ()) -> list[str]:
    return [x for t in TINY + list(extra) if not t.startswith("optim.epochs") for x in ("--set", t)]


@pytest.mark.slow
def test_a_run_started_from_a_checkpoint_has_its_weights_and_records_its_sha256(tmp_path, capsys) -> None:
    data = write_tiny_synth(tmp_path / "synth")
    first = tmp_path / "first"
    assert main(["train", "--data", str(data), "--out", str(first), "--config", "demo", "--epochs", "1"] + _sets()) == 0
    init = first / "best.pt"
    # A learning rate of 1e-12: one epoch moves no weight visibly, so the run's weights are the init's.
    tuned = tmp_path / "tuned"
    assert main(["train", "--data", str(data), "--out", str(tuned), "--config", "demo", "--epochs", "1",
                 "--init", str(init)] + _sets(["optim.lr=1e-12", "optim.freeze=trunk"])) == 0
    a, b = load_checkpoint(init), load_checkpoint(tuned / "last.pt")
    # optim.freeze=trunk: the trunk's weights are the init's to the bit.
    trunk = [k for k in a["model"] if k.startswith("trunk.") and k.endswith(".weight")]
    assert trunk and all(torch.equal(a["model"][k], b["model"][k]) for k in trunk)
    assert b["config"]["optim"]["freeze"] == "trunk"
    params = [k for k, v in a["model"].items() if v.is_floating_point() and "running" not in k and v.dim() > 1]
    assert params
    for k in params:
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-8), k
    record = b["pretrained_weights"]["init"]
    assert record["sha256"] == file_sha256(init) and record["file"] == str(init) and record["epoch"] == 0
    # Without --init the same settings start elsewhere: the comparison above can fail.
    fresh = tmp_path / "fresh"
    assert main(["train", "--data", str(data), "--out", str(fresh), "--config", "demo", "--epochs", "1"]
                + _sets(["optim.lr=1e-12"])) == 0
    c = load_checkpoint(fresh / "last.pt")
    assert "init" not in (c.get("pretrained_weights") or {})
    assert any(not torch.allclose(a["model"][k], c["model"][k], atol=1e-4) for k in params)
    # The model card of the exported run names what it started from.
    card = export_pretrained(tuned / "last.pt", tmp_path / "shared")
    text = (tmp_path / "shared" / "README.md").read_text()
    assert f"Fine-tuned from `best.pt` (init, epoch 0), sha256 `{file_sha256(init)}`" in text, card
    assert str(init.parent) not in text  # the file's name, not where it lay
    # So do the metadata of 'beenet predict' (its tables and summary): the init's name and sha256.
    from _predict_helpers import write_joints_clip
    from beenet.inference.table import read_table

    npy = write_joints_clip(tmp_path / "clip.mp4")
    preds = tmp_path / "preds"
    assert main(["predict", str(npy), "--checkpoint", str(tuned / "last.pt"), "--out", str(preds),
                 "--device", "cpu", "--window", "1", "--stride", "0.5"]) == 0
    want = {"name": "best.pt", "sha256": file_sha256(init), "epoch": 0}
    assert read_table(preds / "clip.csv").trained_on["fine_tuned_from"] == want
    summary = json.loads((preds / "predict_summary.json").read_text())
    assert summary["trained_on"]["fine_tuned_from"] == want
    # A model trained from scratch says nothing of the kind.
    assert main(["predict", str(npy), "--checkpoint", str(fresh / "last.pt"), "--out", str(tmp_path / "p2"),
                 "--device", "cpu", "--window", "1", "--stride", "0.5"]) == 0
    assert "fine_tuned_from" not in read_table(tmp_path / "p2" / "clip.csv").trained_on
    # Weights of another model are refused, naming the mismatch; nothing is trained.
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "other"), "--config", "demo", "--epochs", "1",
                 "--init", str(init)] + _sets(["model.stream_channels=8"])) == 1
    assert "do not match the model built from the config" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["none", "trunk", "all-but-heads"])
def test_freeze_takes_the_named_parts_out_of_the_optimizer(how) -> None:
    from beenet.models import build_model
    from beenet.training.init import freeze
    from beenet.training.optim import param_groups
    from train_helpers import tiny_config

    cfg = tiny_config("demo", [f"optim.freeze={how}"])
    model = build_model(cfg.model)
    names = {n for n, p in model.named_parameters() if p.requires_grad}  # some are fixed by design
    frozen = set(freeze(model, cfg.optim.freeze))
    in_groups = {id(p) for g in param_groups(model, cfg) for p in g["params"]}
    trained = {n for n, p in model.named_parameters() if id(p) in in_groups}
    assert trained == names - frozen and trained
    trunk = {n for n in names if n.startswith("trunk.")}
    if how == "none":
        assert not frozen
    elif how == "trunk":
        assert frozen == {n for n, _ in model.named_parameters() if n.startswith("trunk.")} and trunk
        assert all(m.momentum == 0.0 for m in model.trunk.modules() if isinstance(m, torch.nn.BatchNorm2d))
    else:
        assert trained and all(n.startswith("fusion.") or ".head." in n for n in trained)
        assert trunk <= frozen and any(n.startswith("skeleton_stream.") for n in frozen)


def test_an_unknown_freeze_is_refused_naming_the_choices() -> None:
    from beenet.errors import ConfigError
    from train_helpers import tiny_config

    with pytest.raises(ConfigError, match="optim.freeze.*all-but-heads"):
        tiny_config("demo", ["optim.freeze=heads"])


def test_the_finetune_preset_takes_model_data_and_loss_from_the_init() -> None:
    from beenet.errors import ConfigError
    from beenet.run_config import load_config

    demo = load_config("demo")
    tuned = load_config("finetune", ["optim.epochs=3"], init_config=lambda: demo.to_dict())
    # The demo checkpoint's model (ImageNet weights off: every weight is the init's), data and loss.
    assert {**tuned.model.__dict__, "pretrained": demo.model.pretrained} == demo.model.__dict__
    assert tuned.model.pretrained is False
    assert tuned.data == demo.data and tuned.loss == demo.loss
    # An imported dataset: no sidecar context, the init's priors, the official protocol; a shorter
    # schedule at a lower learning rate; precise BN before each validation.
    assert (tuned.context.source, tuned.context.priors, tuned.run.protocol) == ("none", "init", "official")
    assert tuned.optim.lr < demo.optim.lr and tuned.optim.epochs == 3 and tuned.run.bn_recalibrate > 0
    # --set still reaches a section taken from the init.
    assert load_config("finetune", ["model.dropout=0.5"], init_config=lambda: demo.to_dict()).model.dropout == 0.5
    # Without --init there is nothing to take the sections from.
    with pytest.raises(ConfigError, match=r"data, model, loss section\(s\) are 'init'.*--init"):
        load_config("finetune")


def test_keeping_the_init_priors_needs_an_init(tmp_path, capsys) -> None:
    from beenet.errors import ConfigError
    from train_helpers import tiny_config

    data = tmp_path / "data"  # never read: the run is refused first
    out = tmp_path / "run"
    sets = _sets(["context.source=none", "context.priors=init"])
    assert main(["train", "--data", str(data), "--out", str(out), "--config", "demo"] + sets) == 1
    assert "context.priors=init keeps the priors of the weights a run starts from: give --init" in \
        capsys.readouterr().err
    assert not out.exists()
    # A context model without a context source and without the init's priors is refused at once.
    with pytest.raises(ConfigError, match="context.source is 'none'.*context.priors=init"):
        tiny_config("demo", ["context.source=none"])
    # A model that reads context at every forward cannot do without it, priors or not.
    with pytest.raises(ConfigError, match="fusion_context=input"):
        tiny_config("demo", ["context.source=none", "context.priors=init", "model.fusion_context=input"])


def test_a_fine_tuned_checkpoint_names_its_init_without_its_folder() -> None:
    from beenet.artifacts.checkpoint import trained_on

    ckpt = {"trained_on": {"kind": "bold", "data": "mine"},
            "pretrained_weights": {"init": {"file": "/home/me/secret/best.pt", "sha256": "ab" * 32, "epoch": 14}}}
    assert trained_on(ckpt)["fine_tuned_from"] == {"name": "best.pt", "sha256": "ab" * 32, "epoch": 14}
    assert "fine_tuned_from" not in trained_on({"trained_on": {"kind": "bold"}, "pretrained_weights": {}})
    # Older checkpoints without a data record still say what they started from.
    assert trained_on({"pretrained_weights": ckpt["pretrained_weights"]})["fine_tuned_from"]["name"] == "best.pt"
