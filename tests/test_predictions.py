"""Predictions CSV: round trip, header and value checks, alignment by (video, person_id), report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from beenet.errors import PredictionsError
from beenet.evaluation.predictions import (
    PREDICTION_COLUMNS,
    align_predictions,
    instance_targets,
    read_predictions,
    write_predictions,
)
from beenet.evaluation.report import format_scores
from beenet.labels import CATEGORIES, VAD_NAMES
from beenet.metrics import bold_scores


@dataclass(frozen=True)
class _Inst:
    video: str
    person_id: int
    categories: np.ndarray | None = None
    vad: np.ndarray | None = None


def _keys(n: int) -> list[tuple[str, int]]:
    return [(f"003/clip{i // 2:03d}.mp4/{i:04d}.mp4", i % 2) for i in range(n)]


def _arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 26)), rng.uniform(1, 10, (n, 3))


def _header() -> str:
    return ",".join(PREDICTION_COLUMNS)


def test_columns_follow_labels() -> None:
    assert PREDICTION_COLUMNS == ("video", "person_id", *CATEGORIES, *VAD_NAMES)
    assert len(PREDICTION_COLUMNS) == 31


def test_round_trip_is_exact_and_atomic(tmp_path: Path) -> None:
    keys = _keys(7)
    cats, vad = _arrays(7)
    path = write_predictions(tmp_path / "sub" / "p.csv", keys, torch.tensor(cats), vad)
    assert [p.name for p in path.parent.iterdir()] == ["p.csv"]  # no temp file left
    assert path.read_text().splitlines()[0] == _header()
    df = read_predictions(path)
    assert list(df.columns) == list(PREDICTION_COLUMNS)
    assert list(zip(df["video"], df["person_id"])) == keys
    np.testing.assert_array_equal(df[list(CATEGORIES)].to_numpy(), cats)
    np.testing.assert_array_equal(df[list(VAD_NAMES)].to_numpy(), vad)


def test_write_refuses_bad_input(tmp_path: Path) -> None:
    cats, vad = _arrays(3)
    with pytest.raises(PredictionsError, match="3 keys, 2 rows"):
        write_predictions(tmp_path / "p.csv", _keys(3), cats[:2], vad)
    cats[1, 0] = np.nan
    with pytest.raises(PredictionsError, match="NaN/inf.*clip000.mp4/0001.mp4"):
        write_predictions(tmp_path / "p.csv", _keys(3), cats, vad)
    assert not (tmp_path / "p.csv").exists()
    assert list(tmp_path.iterdir()) == []


def test_read_accepts_any_column_order(tmp_path: Path) -> None:
    keys = _keys(4)
    cats, vad = _arrays(4)
    write_predictions(tmp_path / "a.csv", keys, cats, vad)
    df = read_predictions(tmp_path / "a.csv")
    shuffled = df[list(reversed(PREDICTION_COLUMNS))]
    shuffled.to_csv(tmp_path / "b.csv", index=False)
    df2 = read_predictions(tmp_path / "b.csv")
    assert list(df2.columns) == list(PREDICTION_COLUMNS)
    np.testing.assert_array_equal(df2[list(CATEGORIES)].to_numpy(), cats)


def test_read_names_missing_and_unexpected_columns(tmp_path: Path) -> None:
    cols = [c for c in PREDICTION_COLUMNS if c != "Fear"] + ["fear_score"]
    (tmp_path / "p.csv").write_text(",".join(cols) + "\n")
    with pytest.raises(PredictionsError, match=r"missing columns \['Fear'\].*unexpected columns \['fear_score'\]"):
        read_predictions(tmp_path / "p.csv")
    (tmp_path / "q.csv").write_text(_header() + ",Peace\n")
    with pytest.raises(PredictionsError, match=r"repeated columns \['Peace'\]"):
        read_predictions(tmp_path / "q.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(PredictionsError, match="empty"):
        read_predictions(tmp_path / "empty.csv")
    with pytest.raises(PredictionsError, match="no such predictions file"):
        read_predictions(tmp_path / "nope.csv")


def _row(video: str, pid: str, values: list[str]) -> str:
    return ",".join([video, pid, *values])


def test_read_names_the_row_of_a_bad_value(tmp_path: Path) -> None:
    good = ["0.5"] * 29
    bad = list(good)
    bad[CATEGORIES.index("Anger")] = "high"
    text = "\n".join([_header(), _row("a.mp4", "0", good), _row("b.mp4", "1", bad)]) + "\n"
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(PredictionsError, match=r"p.csv, line 3, column 'Anger': 'high' is not a number"):
        read_predictions(tmp_path / "p.csv")
    bad = list(good)
    bad[-1] = "nan"
    (tmp_path / "p.csv").write_text("\n".join([_header(), _row("a.mp4", "0", bad)]) + "\n")
    with pytest.raises(PredictionsError, match=r"line 2, column 'dominance'.*not a finite number"):
        read_predictions(tmp_path / "p.csv")
    (tmp_path / "p.csv").write_text("\n".join([_header(), _row("a.mp4", "1.5", good)]) + "\n")
    with pytest.raises(PredictionsError, match=r"line 2: person_id '1.5' is not an integer"):
        read_predictions(tmp_path / "p.csv")
    (tmp_path / "p.csv").write_text("\n".join([_header(), _row("a.mp4", "0", good[:-1])]) + "\n")
    with pytest.raises(PredictionsError, match=r"line 2: 30 fields where the header has 31"):
        read_predictions(tmp_path / "p.csv")


def test_align_follows_instance_order(tmp_path: Path) -> None:
    keys = _keys(6)
    cats, vad = _arrays(6)
    write_predictions(tmp_path / "p.csv", keys, cats, vad)
    df = read_predictions(tmp_path / "p.csv")
    order = [4, 0, 5, 2, 1, 3]
    instances = [_Inst(*keys[i]) for i in order]
    got_cats, got_vad = align_predictions(df, instances)
    np.testing.assert_array_equal(got_cats, cats[order])
    np.testing.assert_array_equal(got_vad, vad[order])


def test_align_names_missing_duplicate_and_unknown(tmp_path: Path) -> None:
    keys = _keys(10)
    cats, vad = _arrays(10)
    write_predictions(tmp_path / "p.csv", keys[:8], cats[:8], vad[:8])
    df = read_predictions(tmp_path / "p.csv")
    instances = [_Inst(*k) for k in keys]
    with pytest.raises(PredictionsError, match=r"p.csv: 2 of 10 instance\(s\) have no row, e.g. \('003/clip004.mp4/0008.mp4', 0\)"):
        align_predictions(df, instances)
    with pytest.raises(PredictionsError, match=r"4 row\(s\) match no instance.*wrong split"):
        align_predictions(df, instances[:4])
    dup_keys = keys[:3] + [keys[1]] * 7
    write_predictions(tmp_path / "d.csv", dup_keys, cats, vad)
    with pytest.raises(PredictionsError, match=r"1 instance\(s\) have more than one row, e.g. \('003/clip000.mp4/0001.mp4', 1\)"):
        align_predictions(read_predictions(tmp_path / "d.csv"), instances[:3])


def test_align_lists_first_few_and_count() -> None:
    import pandas as pd

    keys = _keys(12)
    df = pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    with pytest.raises(PredictionsError, match=r"12 of 12 instance\(s\) have no row.*and 7 more"):
        align_predictions(df, [_Inst(*k) for k in keys])


def test_instance_targets_refuses_unlabelled() -> None:
    labelled = _Inst("a.mp4", 0, np.full(26, 0.5, np.float32), np.ones(3, np.float32))
    cats, vad = instance_targets([labelled])
    assert cats.shape == (1, 26) and vad.shape == (1, 3)
    with pytest.raises(PredictionsError, match=r"1 of 2 instance\(s\) of the test split have no labels.*'b.mp4', 3"):
        instance_targets([labelled, _Inst("b.mp4", 3)], "the test split")


def test_format_scores_prints_everything() -> None:
    rng = np.random.default_rng(3)
    targets = rng.choice([0.0, 0.6], size=(40, 26))
    targets[:, CATEGORIES.index("Fear")] = 0.0
    vad_true = rng.uniform(1, 10, (40, 3))
    result = bold_scores(rng.random((40, 26)), targets, vad_true + rng.normal(0, 1, (40, 3)), vad_true)
    text = format_scores(result, "val", "official")
    assert "split=val" in text and "protocol=official" in text and "instances=40" in text
    for key in ("mAP", "mRA", "mR2", "ERS"):
        line = next(line for line in text.splitlines() if line.strip().startswith(key + " "))
        assert f"{result[key]:.4f}" in line and f"{result['chance'][key]:.4f}" in line
    fear = next(line for line in text.splitlines() if line.strip().startswith("Fear "))
    assert "n/a" in fear and "excluded" in fear
    assert "excluded from mAP/mRA (no positive or no negative in this set): Fear" in text
    for name in CATEGORIES + VAD_NAMES:
        assert name in text
    assert "CCC" in text
    paper = format_scores(result, "test", "paper")
    assert "protocol=paper" in paper and "not comparable" in paper


def test_no_stray_temp_files_after_overwrite(tmp_path: Path) -> None:
    cats, vad = _arrays(2)
    write_predictions(tmp_path / "p.csv", _keys(2), cats, vad)
    write_predictions(tmp_path / "p.csv", _keys(2), cats * 0.5, vad)
    assert os.listdir(tmp_path) == ["p.csv"]
    np.testing.assert_array_equal(read_predictions(tmp_path / "p.csv")[list(CATEGORIES)].to_numpy(), cats * 0.5)


def test_read_tolerates_a_byte_order_mark_and_refuses_binary(tmp_path: Path) -> None:
    cats, vad = _arrays(2)
    write_predictions(tmp_path / "p.csv", _keys(2), cats, vad)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "p.csv").read_bytes())
    df = read_predictions(tmp_path / "bom.csv")
    np.testing.assert_array_equal(df[list(CATEGORIES)].to_numpy(), cats)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(PredictionsError, match="not a UTF-8 text CSV"):
        read_predictions(tmp_path / "bin.csv")
