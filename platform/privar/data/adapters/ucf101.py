"""The ``ucf101`` adapter: UCF101 (Soomro et al., 2012), as ELR (extreme low-resolution action
recognition) and STAT (spatial-temporal attention transfer) use it: 101 actions, three folds.

Layout: ``root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``root/ucfTrainTestlist/`` holding
``classInd.txt`` (``<n> <Class>``), ``trainlist0N.txt`` (``<Class>/<file>.avi <n>``) and
``testlist0N.txt`` (``<Class>/<file>.avi``). ``root`` may also be the ``UCF-101`` folder itself,
with ``ucfTrainTestlist/`` inside it or beside it.

privacy = the group, "g01" ... "g25": UCF101 cut each group's clips from one long video, so a
group shares actors, place and camera. The official folds keep groups apart (fold 1 tests on
g01-g07), so a privacy classifier trained on a fold's train split never sees its test groups.

Split: the official fold (option ``fold``, 1-3): trainlist -> train, testlist -> test (no val).
"""

from __future__ import annotations

import re
from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.manifest import VideoRecord
from privar.errors import UserError

LISTS = "ucfTrainTestlist"
_GROUP = re.compile(r"v_\w+_g(\d\d)_c\d\d\.avi")


@ADAPTERS.register("ucf101")
def scan(root: Path, fold: int = 1) -> list[VideoRecord]:
    """UCF101 videos of fold ``fold`` (1, 2 or 3)."""
    if str(fold) not in ("1", "2", "3"):
        raise UserError(f"ucf101: fold must be 1, 2 or 3, not {fold!r}")
    videos = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    lists = next((d / LISTS for d in (root, root.parent) if (d / LISTS).is_dir()), None)
    if lists is None:
        raise UserError(f"{root / LISTS}: missing UCF101 split folder (looked here and beside)")
    classes = _classes(lists / "classInd.txt")
    records = []
    for split, name in (("train", f"trainlist0{fold}.txt"), ("test", f"testlist0{fold}.txt")):
        path = lists / name
        if not path.is_file():
            raise UserError(f"{path}: missing UCF101 split file")
        for line, text in enumerate(path.read_text().splitlines(), start=1):
            if not text.strip():
                continue
            cls, _, file = text.split()[0].partition("/")
            m = _GROUP.fullmatch(file)
            if cls not in classes or m is None:
                raise UserError(f"{path}:{line}: expected <Class>/v_<Class>_gXX_cYY.avi")
            video = videos / cls / file
            if not video.is_file():
                raise UserError(f"{video}: listed in {path}:{line}, but missing")
            records.append(VideoRecord(str(video), cls, f"g{m[1]}", split))
    return records


def _classes(path: Path) -> set[str]:
    if not path.is_file():
        raise UserError(f"{path}: missing UCF101 class list")
    classes = {t.split()[-1] for t in path.read_text().splitlines() if t.strip()}
    if not classes:
        raise UserError(f"{path}: the class list is empty")
    return classes
