"""The dataset adapters, each on a tiny fake tree in its dataset's own layout.

Video files the adapters only list are empty placeholders (adapters never open videos). Frame
folders and long videos that adapters convert are real: tiny flat-grey images and AVIs written
with PyAV, and the clips made of them are checked with decord, as the data layer will read them.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import decord
import numpy as np
import pytest

from privar.data.adapters import ADAPTERS, hmdb51, ipn, jester, kth, sbu, ucf101
from privar.data.adapters._convert import cut_segments, frames_to_mp4
from privar.data.manifest import VideoRecord
from privar.errors import UserError

SIZE = 32  # decord 0.6 misreads some narrow frames (16 or 48 pixels wide): keep to 32
STEP = 12  # frame i of a fixture is flat grey i * STEP, so a clip tells which frames it holds


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def grey(level: int, width: int = SIZE, height: int = SIZE) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((height, width, 3), level, np.uint8), format="rgb24")


def write_image(path: Path, level: int, width: int = SIZE, height: int = SIZE) -> None:
    """A flat grey PNG (``.png``) or JPEG (``.jpg``) frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    jpeg = path.suffix == ".jpg"
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("mjpeg" if jpeg else "png")
        s.width, s.height, s.pix_fmt = width, height, "yuvj420p" if jpeg else "rgb24"
        c.mux(s.encode(grey(level, width, height)))
        c.mux(s.encode(None))


def write_frames(folder: Path, n: int, name: str = "{:05d}.jpg") -> None:
    for i in range(n):
        write_image(folder / name.format(i + 1), i * STEP)


def write_avi(path: Path, n: int) -> Path:
    """An MPEG-4 AVI at 30 fps whose frame i is grey i * STEP."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width, s.height, s.pix_fmt, s.bit_rate = SIZE, SIZE, "yuv420p", 4_000_000
        for i in range(n):
            c.mux(s.encode(grey(i * STEP)))
        c.mux(s.encode(None))
    return path


def frames_of(path: str | Path) -> list[int]:
    """The fixture frame index each frame of the clip ``path`` shows, read with decord."""
    vr = decord.VideoReader(str(path))
    clip = vr.get_batch(list(range(len(vr)))).asnumpy()
    return [round(float(f.mean()) / STEP) for f in clip]


def fps_of(path: str | Path) -> float:
    return decord.VideoReader(str(path)).get_avg_fps()


def by_path(records: list[VideoRecord]) -> list[VideoRecord]:
    return sorted(records, key=lambda r: r.path)


def parts(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def test_adapters_register_under_their_names():
    modules = {"kth": kth, "sbu": sbu, "ipn": ipn, "ucf101": ucf101, "hmdb51": hmdb51}
    for name, module in {**modules, "jester": jester}.items():
        assert ADAPTERS.factory(name) is module.scan


# --- KTH ---------------------------------------------------------------------------------------


def test_kth_action_folders_split_by_rotating_scenario(tmp_path: Path):
    for d in (1, 2, 3, 4):
        touch(tmp_path / "boxing" / f"person01_boxing_d{d}_uncomp.avi")
        touch(tmp_path / "walking" / f"person02_walking_d{d}_uncomp.avi")
    got = by_path(kth.scan(tmp_path))
    box, walk = str(tmp_path / "boxing" / "person01_boxing"), str(tmp_path / "walking" / "person02")
    assert got == [
        VideoRecord(f"{box}_d1_uncomp.avi", "boxing", "person01", "test"),
        VideoRecord(f"{box}_d2_uncomp.avi", "boxing", "person01", "val"),
        VideoRecord(f"{box}_d3_uncomp.avi", "boxing", "person01", "train"),
        VideoRecord(f"{box}_d4_uncomp.avi", "boxing", "person01", "train"),
        VideoRecord(f"{walk}_walking_d1_uncomp.avi", "walking", "person02", "train"),
        VideoRecord(f"{walk}_walking_d2_uncomp.avi", "walking", "person02", "test"),
        VideoRecord(f"{walk}_walking_d3_uncomp.avi", "walking", "person02", "val"),
        VideoRecord(f"{walk}_walking_d4_uncomp.avi", "walking", "person02", "train"),
    ]
    no_val = {Path(r.path).name: r.split for r in kth.scan(tmp_path, val=False)}
    assert no_val["person01_boxing_d2_uncomp.avi"] == "train"
    assert no_val["person02_walking_d3_uncomp.avi"] == "train"
    assert sorted(no_val.values()).count("test") == 2


def test_kth_full_flat_folder_every_actor_in_every_split(tmp_path: Path):
    for p in range(1, 26):
        for action in kth.ACTIONS:
            for d in (1, 2, 3, 4):
                if (p, action, d) != (13, "handclapping", 3):  # missing from KTH itself
                    touch(tmp_path / f"person{p:02d}_{action}_d{d}_uncomp.avi")
    records = kth.scan(tmp_path)
    assert len(records) == 599
    assert {r.path for r in records} == {str(p) for p in tmp_path.iterdir()}
    for split in ("train", "val", "test"):
        rows = [r for r in records if r.split == split]
        assert {r.privacy for r in rows} == {f"person{p:02d}" for p in range(1, 26)}
        assert {r.action for r in rows} == set(kth.ACTIONS)
    assert [sum(r.split == s for r in records) for s in ("train", "val", "test")] == [299, 150, 150]

    persons = kth.scan(tmp_path, split="persons")
    actors = {
        s: {int(r.privacy[6:]) for r in persons if r.split == s} for s in ("train", "val", "test")
    }
    assert actors == {
        "train": set(range(11, 19)),
        "val": {19, 20, 21, 23, 24, 25, 1, 4},
        "test": {22, 2, 3, 5, 6, 7, 8, 9, 10},
    }


def test_kth_bad_layouts_name_the_file(tmp_path: Path):
    with pytest.raises(UserError, match="no KTH videos"):
        kth.scan(tmp_path)
    bad = touch(tmp_path / "boxing" / "person01_boxing_d1.avi")
    with pytest.raises(UserError, match=str(bad)):
        kth.scan(tmp_path)
    bad.unlink()
    wrong = touch(tmp_path / "boxing" / "person01_running_d1_uncomp.avi")
    with pytest.raises(UserError, match=str(wrong)):
        kth.scan(tmp_path)
    with pytest.raises(UserError, match="split must be"):
        kth.scan(tmp_path, split="random")


# --- SBU ---------------------------------------------------------------------------------------

SBU_SETS = (
    "s01s02 s01s03 s01s07 s02s01 s02s03 s02s06 s02s07 s03s02 s03s04 s03s05 s03s06 "
    "s04s02 s04s03 s04s06 s05s02 s05s03 s06s02 s06s03 s06s04 s07s01 s07s03"
).split()


def test_sbu_21_sets_fold_into_13_pairs_each_in_every_split(tmp_path: Path):
    for s in SBU_SETS:
        for a in sbu.ACTIONS:
            touch(tmp_path / s / a / "001.avi")
    records = sbu.scan(tmp_path)
    assert len(records) == 21 * 8
    pairs = {r.privacy for r in records}
    assert len(pairs) == 13 and "s02s01" not in pairs and "s01s02" in pairs
    assert sum(r.privacy == "s01s02" for r in records) == 16  # s01s02 and s02s01
    for split in ("train", "val", "test"):
        assert {r.privacy for r in records if r.split == split} == pairs
    assert {r.action for r in records} == set(sbu.ACTIONS.values())
    assert not (tmp_path / "_videos").exists()  # video files are used as they are


def test_sbu_exact_records_deal_each_pair_in_turns(tmp_path: Path):
    names = ["s02s01/01/001.avi", "s02s01/01/002.avi", "s02s01/02/001.mp4", "s01s02/01/001.avi"]
    names += ["s01s02/08/001.avi", "s01s02/08/002.avi", "s03s04/05/001.avi"]
    for n in names:
        touch(tmp_path / n)
    assert sbu.scan(tmp_path) == [
        VideoRecord(str(tmp_path / "s01s02/01/001.avi"), "approaching", "s01s02", "train"),
        VideoRecord(str(tmp_path / "s02s01/01/001.avi"), "approaching", "s01s02", "train"),
        VideoRecord(str(tmp_path / "s02s01/01/002.avi"), "approaching", "s01s02", "train"),
        VideoRecord(str(tmp_path / "s02s01/02/001.mp4"), "departing", "s01s02", "val"),
        VideoRecord(str(tmp_path / "s01s02/08/001.avi"), "exchanging", "s01s02", "test"),
        VideoRecord(str(tmp_path / "s01s02/08/002.avi"), "exchanging", "s01s02", "train"),
        VideoRecord(str(tmp_path / "s03s04/05/001.avi"), "pushing", "s03s04", "train"),
    ]


def test_sbu_frame_folders_become_15fps_mp4s_once(tmp_path: Path):
    run = tmp_path / "s01s02" / "04" / "001"
    write_frames(run, 4, "rgb_{:06d}.png")
    write_image(run / "depth_000001.png", 200)  # SBU's depth frames sit beside: ignored
    touch(run / "skeleton_pos.txt", "1,0.5\n")
    write_frames(tmp_path / "s01s02" / "04" / "002", 3, "rgb_{:06d}.png")
    touch(tmp_path / "s01s02" / "04" / "003.avi")
    (tmp_path / "s01s02" / "04" / "003").mkdir()  # a video file wins over a folder of its run
    records = sbu.scan(tmp_path)
    cache = tmp_path / "_videos" / "s01s02" / "04"
    assert [(r.path, r.action, r.privacy) for r in records] == [
        (str(cache / "001.mp4"), "punching", "s01s02"),
        (str(cache / "002.mp4"), "punching", "s01s02"),
        (str(tmp_path / "s01s02" / "04" / "003.avi"), "punching", "s01s02"),
    ]
    assert frames_of(cache / "001.mp4") == [0, 1, 2, 3]
    assert frames_of(cache / "002.mp4") == [0, 1, 2]
    assert fps_of(cache / "001.mp4") == 15
    assert not parts(tmp_path)

    stamp = (cache / "001.mp4").stat().st_mtime_ns
    assert sbu.scan(tmp_path) == records  # the second scan converts nothing
    assert (cache / "001.mp4").stat().st_mtime_ns == stamp

    elsewhere = tmp_path / "clips"
    moved = sbu.scan(tmp_path, convert_to=str(elsewhere))
    assert moved[0].path == str(elsewhere / "s01s02" / "04" / "001.mp4")


def test_sbu_bad_layouts_name_the_folder(tmp_path: Path):
    with pytest.raises(UserError, match="no SBU set folders"):
        sbu.scan(tmp_path)
    empty = tmp_path / "s01s02" / "01" / "001"
    touch(empty / "depth_000001.png")
    with pytest.raises(UserError, match=f"{empty}: no frame images"):
        sbu.scan(tmp_path)


# --- IPN Hand ----------------------------------------------------------------------------------

IPN_A, IPN_B = "1CM1_1_R_#217", "4CM11_5_L_#93"
IPN_HEADER = "video,label,id,t_start,t_end,frames\n"


def ipn_tree(root: Path, metadata: str = "video,Frames,Sex,Hand\n") -> Path:
    touch(root / "Annot_TrainList.txt", IPN_HEADER + f"{IPN_A},D0X,1,1,4,4\n")
    with (root / "Annot_TrainList.txt").open("a") as f:
        f.write(f"{IPN_A},G01,4,5,10,6\n{IPN_A},B0A,2,12,15,4\n")
    touch(root / "Annot_TestList.txt", f"{IPN_HEADER}{IPN_B},G05,8,1,6,6\n{IPN_B},D0X,1,7,9,3\n")
    if metadata.startswith("video,Frames,Sex"):
        metadata += f"{IPN_A},16,M,right\n{IPN_B},10,F,left\n"
    touch(root / "metadata.csv", metadata)
    return root


def test_ipn_cuts_each_gesture_segment_from_its_video(tmp_path: Path):
    root = ipn_tree(tmp_path)
    write_avi(root / "videos" / f"{IPN_A}.avi", 16)
    write_avi(root / "videos" / f"{IPN_B}.avi", 10)
    records = ipn.scan(root)
    cache = root / "_videos"
    assert records == [
        VideoRecord(str(cache / f"{IPN_A}_5_10.mp4"), "G01", "male", "train"),
        VideoRecord(str(cache / f"{IPN_A}_12_15.mp4"), "B0A", "male", "train"),
        VideoRecord(str(cache / f"{IPN_B}_1_6.mp4"), "G05", "female", "test"),
    ]
    assert frames_of(records[0].path) == [4, 5, 6, 7, 8, 9]  # IPN counts frames from 1
    assert frames_of(records[1].path) == [11, 12, 13, 14]
    assert frames_of(records[2].path) == [0, 1, 2, 3, 4, 5]
    assert fps_of(records[0].path) == 30
    assert not parts(root)

    stamp = Path(records[0].path).stat().st_mtime_ns
    everything = ipn.scan(root, exclude=())
    assert Path(records[0].path).stat().st_mtime_ns == stamp  # already cut: kept
    assert [r.action for r in everything] == ["D0X", "G01", "B0A", "G05", "D0X"]
    assert frames_of(everything[-1].path) == [6, 7, 8]


def test_ipn_uses_precut_segments_and_frame_folders(tmp_path: Path):
    precut = ipn_tree(tmp_path / "precut")
    for clip in (f"{IPN_A}_5_10.avi", f"{IPN_A}_12_15.avi", f"{IPN_B}_1_6.mp4"):
        touch(precut / "segments" / clip)
    assert [r.path for r in ipn.scan(precut)] == [
        str(precut / "segments" / f"{IPN_A}_5_10.avi"),
        str(precut / "segments" / f"{IPN_A}_12_15.avi"),
        str(precut / "segments" / f"{IPN_B}_1_6.mp4"),
    ]
    (precut / "segments" / f"{IPN_B}_1_6.mp4").unlink()
    with pytest.raises(UserError, match=f"{IPN_B}_1_6.avi: missing pre-cut"):
        ipn.scan(precut)

    frames = ipn_tree(tmp_path / "frames")
    write_frames(frames / "frames" / IPN_A, 16, f"{IPN_A}_{{:06d}}.jpg")
    write_avi(frames / "videos" / f"{IPN_B}.avi", 10)
    records = ipn.scan(frames)
    assert [frames_of(r.path) for r in records[:2]] == [[4, 5, 6, 7, 8, 9], [11, 12, 13, 14]]
    assert fps_of(records[0].path) == 30


def test_ipn_reads_gender_however_it_is_spelled(tmp_path: Path):
    root = ipn_tree(tmp_path, f" Gender ,video\nFemale,{IPN_A}.avi\nmale,{IPN_B}\n")
    for name in (f"{IPN_A}_5_10.avi", f"{IPN_A}_12_15.avi", f"{IPN_B}_1_6.avi"):
        touch(root / "segments" / name)
    assert [r.privacy for r in ipn.scan(root)] == ["female", "female", "male"]


def test_ipn_bad_layouts_name_the_file(tmp_path: Path):
    root = ipn_tree(tmp_path, "video,Hand\nx,right\n")
    with pytest.raises(UserError, match=f"{root / 'metadata.csv'}: needs .* Sex or Gender"):
        ipn.scan(root)
    touch(root / "metadata.csv", f"video,Sex\n{IPN_A},X\n")
    with pytest.raises(UserError, match=f"{root / 'metadata.csv'}:2: gender 'X'"):
        ipn.scan(root)
    touch(root / "metadata.csv", f"video,Sex\n{IPN_A},M\n")
    with pytest.raises(UserError, match=f"Annot_TestList.txt:2: video '{IPN_B}' has no row"):
        ipn.scan(root)
    (root / "Annot_TestList.txt").unlink()
    with pytest.raises(UserError, match=f"{root / 'Annot_TestList.txt'}: missing"):
        ipn.scan(root)


def test_ipn_segment_past_the_video_end_names_the_video(tmp_path: Path):
    root = ipn_tree(tmp_path)
    video = write_avi(root / "videos" / f"{IPN_A}.avi", 12)  # the B0A segment ends at 15
    write_avi(root / "videos" / f"{IPN_B}.avi", 10)
    with pytest.raises(UserError, match=f"{video}: segment of frames 12..15 goes past its 12"):
        ipn.scan(root)
    assert not parts(root)
    assert frames_of(root / "_videos" / f"{IPN_A}_5_10.mp4") == [4, 5, 6, 7, 8, 9]


# --- UCF101 ------------------------------------------------------------------------------------


def ucf_tree(root: Path) -> dict[str, str]:
    """Two classes, groups g01 and g08; fold 1 tests g01, fold 2 tests g08."""
    names = {
        "eye1": "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "eye8": "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi",
        "hs1": "HandstandPushups/v_HandStandPushups_g01_c03.avi",  # UCF101's own odd casing
        "hs8": "HandstandPushups/v_HandStandPushups_g08_c01.avi",
    }
    for n in names.values():
        touch(root / "UCF-101" / n)
    lists = root / "ucfTrainTestlist"
    touch(lists / "classInd.txt", "1 ApplyEyeMakeup\r\n37 HandstandPushups\r\n")
    touch(lists / "trainlist01.txt", f"{names['eye8']} 1\n{names['hs8']} 37\n")
    touch(lists / "testlist01.txt", f"{names['eye1']}\n{names['hs1']}\n")
    touch(lists / "trainlist02.txt", f"{names['eye1']} 1\n{names['hs1']} 37\n")
    touch(lists / "testlist02.txt", f"{names['eye8']}\n\n{names['hs8']}\n")
    return names


def test_ucf101_folds_groups_and_either_root(tmp_path: Path):
    names = ucf_tree(tmp_path)
    videos = tmp_path / "UCF-101"
    fold1 = ucf101.scan(tmp_path)
    assert fold1 == [
        VideoRecord(str(videos / names["eye8"]), "ApplyEyeMakeup", "g08", "train"),
        VideoRecord(str(videos / names["hs8"]), "HandstandPushups", "g08", "train"),
        VideoRecord(str(videos / names["eye1"]), "ApplyEyeMakeup", "g01", "test"),
        VideoRecord(str(videos / names["hs1"]), "HandstandPushups", "g01", "test"),
    ]
    fold2 = ucf101.scan(tmp_path, fold=2)
    assert [(r.privacy, r.split) for r in fold2] == [
        ("g01", "train"),
        ("g01", "train"),
        ("g08", "test"),
        ("g08", "test"),
    ]
    assert ucf101.scan(videos) == fold1  # root may be UCF-101/ itself, lists beside it


def test_ucf101_bad_layouts_name_the_file(tmp_path: Path):
    names = ucf_tree(tmp_path)
    with pytest.raises(UserError, match=f"{tmp_path / 'ucfTrainTestlist' / 'trainlist03.txt'}"):
        ucf101.scan(tmp_path, fold=3)
    with pytest.raises(UserError, match="fold must be 1, 2 or 3"):
        ucf101.scan(tmp_path, fold=4)
    (tmp_path / "UCF-101" / names["hs1"]).unlink()
    with pytest.raises(UserError, match="v_HandStandPushups_g01_c03.avi: listed in .*testlist01"):
        ucf101.scan(tmp_path)
    (tmp_path / "ucfTrainTestlist" / "classInd.txt").unlink()
    with pytest.raises(UserError, match="classInd.txt: missing"):
        ucf101.scan(tmp_path)


# --- HMDB51 ------------------------------------------------------------------------------------


def test_hmdb51_folds_drop_unused_and_name_the_source(tmp_path: Path):
    a0, a1 = (
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
        "April_09_brush_hair_u_nm_np1_ba_goo_1.avi",
    )
    blonde = "Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_2.avi"
    punch = "American_History_X_punch_u_cm_np1_fr_bad_3.avi"
    odd = "odd_clip.avi"
    for cls, name in (("brush_hair", a0), ("brush_hair", a1), ("brush_hair", blonde)):
        touch(tmp_path / cls / name)
    touch(tmp_path / "punch" / punch)
    touch(tmp_path / "punch" / odd)
    splits = tmp_path / "testTrainMulti_7030_splits"
    touch(splits / "brush_hair_test_split1.txt", f"{a0} 1 \n{a1} 0 \n{blonde} 2 \n")
    touch(splits / "punch_test_split1.txt", f"{punch} 1 \n{odd} 2 \n")
    touch(splits / "brush_hair_test_split2.txt", f"{a0} 2 \n{a1} 2 \n{blonde} 1 \n")
    touch(splits / "punch_test_split2.txt", f"{punch} 0 \n{odd} 0 \n")

    assert hmdb51.scan(tmp_path) == [
        VideoRecord(str(tmp_path / "brush_hair" / a0), "brush_hair", "April_09", "train"),
        VideoRecord(
            str(tmp_path / "brush_hair" / blonde), "brush_hair", "Blonde_being_brushed", "test"
        ),
        VideoRecord(str(tmp_path / "punch" / punch), "punch", "American_History_X", "train"),
        VideoRecord(str(tmp_path / "punch" / odd), "punch", "odd_clip", "test"),
    ]
    fold2 = hmdb51.scan(tmp_path, fold=2)
    assert [(Path(r.path).name, r.split) for r in fold2] == [
        (a0, "test"),
        (a1, "test"),
        (blonde, "train"),
    ]


def test_hmdb51_bad_layouts_name_the_file(tmp_path: Path):
    with pytest.raises(UserError, match="testTrainMulti_7030_splits: missing"):
        hmdb51.scan(tmp_path)
    splits = tmp_path / "testTrainMulti_7030_splits"
    touch(splits / "punch_test_split1.txt", "a_punch_u_cm_np1_fr_bad_3.avi 1\n")
    with pytest.raises(UserError, match=f"{splits}: no <class>_test_split2.txt"):
        hmdb51.scan(tmp_path, fold=2)
    with pytest.raises(UserError, match="a_punch_u_cm_np1_fr_bad_3.avi: listed in"):
        hmdb51.scan(tmp_path)
    touch(splits / "punch_test_split1.txt", "a_punch_u_cm_np1_fr_bad_3.avi train\n")
    with pytest.raises(UserError, match="punch_test_split1.txt:1: expected"):
        hmdb51.scan(tmp_path)


# --- Jester ------------------------------------------------------------------------------------


def jester_tree(root: Path) -> Path:
    frames = root / "20bn-jester-v1"
    for video, n in (("1", 5), ("2", 3), ("3", 4)):
        write_frames(frames / video, n)
    touch(root / "jester-v1-labels.csv", "Swiping Left\nThumb Up\nNo gesture\n")
    touch(root / "jester-v1-train.csv", "1;Swiping Left\n2;Thumb Up\n")
    touch(root / "jester-v1-validation.csv", "3;No gesture\n")
    touch(root / "jester-v1-test.csv", "4\n")  # no labels: not read
    return frames


def test_jester_frame_folders_become_12fps_mp4s(tmp_path: Path):
    frames = jester_tree(tmp_path)
    cache = tmp_path / "_videos"
    records = jester.scan(tmp_path)
    assert records == [
        VideoRecord(str(cache / "1.mp4"), "Swiping Left", "unknown", "train"),
        VideoRecord(str(cache / "2.mp4"), "Thumb Up", "unknown", "train"),
        VideoRecord(str(cache / "3.mp4"), "No gesture", "unknown", "val"),
    ]
    assert [frames_of(r.path) for r in records] == [[0, 1, 2, 3, 4], [0, 1, 2], [0, 1, 2, 3]]
    assert fps_of(cache / "1.mp4") == 12
    inner = jester.scan(frames)  # root may be 20bn-jester-v1/ itself, lists beside it
    assert inner[0].path == str(frames / "_videos" / "1.mp4")


def test_jester_bad_layouts_name_the_file(tmp_path: Path):
    jester_tree(tmp_path)
    touch(tmp_path / "jester-v1-validation.csv", "3;Waving\n")
    with pytest.raises(UserError, match="jester-v1-validation.csv:1: label 'Waving'"):
        jester.scan(tmp_path)
    assert not (tmp_path / "_videos").exists()  # the lists are checked before converting
    (tmp_path / "jester-v1-labels.csv").unlink()
    with pytest.raises(UserError, match=f"{tmp_path / 'jester-v1-labels.csv'}: missing"):
        jester.scan(tmp_path)


# --- the shared conversions --------------------------------------------------------------------


def test_frames_to_mp4_reconverts_when_the_folder_changes(tmp_path: Path):
    folder = tmp_path / "frames"
    for i in range(3):  # odd sizes: the last row and column are dropped for yuv420p
        write_image(folder / f"{i + 1}.png", i * STEP, width=SIZE + 1, height=SIZE + 3)
    for codec in ("libx264", "mpeg4"):
        out = frames_to_mp4(folder, tmp_path / f"{codec}.mp4", 10, codec=codec)
        assert frames_of(out) == [0, 1, 2]
        assert decord.VideoReader(str(out))[0].shape == (SIZE + 2, SIZE, 3)
    out = tmp_path / "libx264.mp4"
    write_image(folder / "10.png", 3 * STEP, width=SIZE + 1, height=SIZE + 3)  # after 1-3.png
    later = out.stat().st_mtime_ns + 10**9
    os.utime(folder, ns=(later, later))
    assert frames_of(frames_to_mp4(folder, out, 10)) == [0, 1, 2, 3]
    assert frames_of(frames_to_mp4(folder, tmp_path / "part.mp4", 10, first=1, last=2)) == [1, 2]
    assert not parts(tmp_path)


def test_a_failed_conversion_leaves_no_file(tmp_path: Path):
    folder = tmp_path / "frames"
    write_frames(folder, 2)
    broken = touch(folder / "00003.jpg", "not a JPEG")
    out = tmp_path / "clips" / "x.mp4"
    with pytest.raises(UserError, match=f"{broken}: cannot read"):
        frames_to_mp4(folder, out, 12)
    assert not out.exists() and not parts(tmp_path)


def test_cut_segments_one_pass_and_skips_done_clips(tmp_path: Path):
    video = write_avi(tmp_path / "long.avi", 20)
    a, b = tmp_path / "cut" / "a.mp4", tmp_path / "cut" / "b.mp4"
    assert cut_segments(video, [(10, 19, b), (0, 3, a)]) == [b, a]
    assert frames_of(a) == [0, 1, 2, 3] and frames_of(b) == list(range(10, 20))
    stamp = a.stat().st_mtime_ns
    c = tmp_path / "cut" / "c.mp4"
    cut_segments(video, [(0, 3, a), (2, 5, c)])
    assert a.stat().st_mtime_ns == stamp and frames_of(c) == [2, 3, 4, 5]
