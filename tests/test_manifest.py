"""The manifest CSV: round trip, relative paths, labels, and one-line errors naming file and row."""

from __future__ import annotations

from pathlib import Path

import pytest

from privar.data.manifest import (
    Quarantined,
    VideoRecord,
    label_index,
    one_split_labels,
    read_manifest,
    read_quarantine,
    write_manifest,
    write_quarantine,
)
from privar.errors import UserError


def test_round_trip_with_relative_paths(tmp_path: Path) -> None:
    root = tmp_path / "set"
    records = [
        VideoRecord(str(root / "videos" / "a.mp4"), "walk", "actor2", "train", 16, 25.0, 32, 40),
        VideoRecord(str(root / "videos" / "b.mp4"), "run", "actor1", "test", 8, 15.0, 32, 40),
    ]
    path = write_manifest(records, root / "manifest.csv")
    assert "videos/a.mp4" in path.read_text() and str(root) not in path.read_text()
    assert read_manifest(path) == records
    moved = tmp_path / "moved"
    root.rename(moved)  # a manifest moves with its videos
    assert read_manifest(moved / "manifest.csv")[0].path == str(moved / "videos" / "a.mp4")


def test_probed_columns_are_optional(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("path,action,privacy,split\n/data/x.avi,wave,p1,val\n/data/y.avi,wave,p1,train\n")
    r = read_manifest(p)[0]
    assert (r.path, r.split, r.num_frames, r.probed) == ("/data/x.avi", "val", 0, False)


def test_labels_are_sorted_and_stable() -> None:
    rs = [VideoRecord(f"{i}", a, p, "train") for i, (a, p) in enumerate(
        [("wave", "b"), ("clap", "a"), ("wave", "c")])]  # fmt: skip
    assert label_index(rs, "action") == {"clap": 0, "wave": 1}
    assert label_index(reversed(rs), "privacy") == {"a": 0, "b": 1, "c": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,action,split\nx,a,train\n", "missing column(s) privacy"),
        ("path,action,privacy,split\nx,a,p,holdout\n", "m.csv:2: split 'holdout'"),
        ("path,action,privacy,split\nx,,p,train\n", "m.csv:2: column 'action' is empty"),
        ("path,action,privacy,split,num_frames\nx,a,p,train,many\n", "'many' is not a number"),
        ("path,action,privacy,split\n", "has no rows"),
        ("path,action,privacy,split,lable\nx,a,p,train,b\n",
         "m.csv:1: unknown column(s) 'lable'; a manifest has path, action"),
        ("path,action,privacy,split\nx,a,p,train\ny,a,p,test\n./x,a,p,test\n",
         "m.csv:4: column 'path': './x' is already on line 2"),
        ("path,action,privacy,split\nx,a,p,train\ny,a,p,train\n",
         "m.csv: column 'split': no video in split 'val' or 'test', which a study evaluates on"),
        ("path,action,privacy,split\nx,a,p,val\ny,a,p,test\n",
         "m.csv: column 'split': no video in split 'train', which a study trains on"),
    ],
)  # fmt: skip
def test_bad_manifests_name_file_and_row(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "m.csv"
    p.write_text(text)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(p)


def test_quarantine_round_trip(tmp_path: Path) -> None:
    items = [Quarantined("/v/a.mp4", "empty file (0 bytes)"), Quarantined("/v/b,c.mp4", "x, y")]
    assert read_quarantine(write_quarantine(items, tmp_path / "q.csv")) == items
    assert read_quarantine(tmp_path / "none.csv") == []


def test_labels_in_one_split_only_are_kept_with_a_warning(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("path,action,privacy,split\n"
                 "a,wave,p1,train\nb,clap,p2,train\nc,wave,p1,test\nd,jump,p2,test\n")  # fmt: skip
    records = read_manifest(p)
    assert len(records) == 4  # kept: datasets split by actor do this on purpose
    [action] = one_split_labels(records)  # both privacy labels are in both splits
    assert action.startswith("2 action label(s) not in every split (train/test): "
                             "'clap' (train), 'jump' (test); a label missing from train is "
                             "never predicted")  # fmt: skip
    whole = [r for r in records if r.action == "wave"]
    assert one_split_labels(whole) == []


def test_utf8_paths_a_spreadsheet_bom_and_other_encodings(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_bytes("\ufeffpath,action,privacy,split\nvidéo 1.mp4,a,p,train\nx.mp4,a,p,val\n"
                  .encode())  # fmt: skip
    assert read_manifest(p)[0].path == str(tmp_path / "vidéo 1.mp4")
    p.write_bytes("path,action,privacy,split\nvidéo 1.mp4,a,p,train\n".encode("latin-1"))
    with pytest.raises(
        UserError, match=r"m.csv: not UTF-8 text \(invalid continuation byte\); save it as UTF-8"
    ):
        read_manifest(p)
