"""The ``hmdb51`` adapter: HMDB51 (Kuehne et al., ICCV 2011), as STAT (spatial-temporal attention
transfer) uses it: 51 actions, three folds.

Layout: ``root/<class>/<video>.avi`` and the split files
``testTrainMulti_7030_splits/<class>_test_splitN.txt`` (in ``root`` or beside it), lines
``<video>.avi <0|1|2>``: 1 train, 2 test, 0 unused in that fold (dropped).

privacy = the source video, not a person: HMDB51 names carry no actor id. A name reads
``<source>_<class>_<body part>_<camera motion>_<people>_<view>_<quality>_<n>.avi`` (e.g.
``April_09_brush_hair_u_nm_np1_ba_goo_0.avi``), and the source is what comes before the class
(``April_09``): the movie or web video the clip was cut from, shared by clips of several
classes. A name not in that form keeps what remains after dropping the tags and the class.
HMDB51's folds keep the clips of one source video on one side, so train and test sources differ.

Split: the official fold (option ``fold``, 1-3): train and test (no val).
"""

from __future__ import annotations

import re
from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.manifest import VideoRecord
from privar.errors import UserError

SPLITS = "testTrainMulti_7030_splits"
_TAGS = re.compile(r"_[fhul]_(cm|nm)_np\d+_(fr|ba|le|ri)_(goo|med|bad)_\d+$", re.IGNORECASE)


@ADAPTERS.register("hmdb51")
def scan(root: Path, fold: int = 1) -> list[VideoRecord]:
    """HMDB51 videos of fold ``fold`` (1, 2 or 3); the unused ones (0) are dropped."""
    if str(fold) not in ("1", "2", "3"):
        raise UserError(f"hmdb51: fold must be 1, 2 or 3, not {fold!r}")
    splits = next((d / SPLITS for d in (root, root.parent) if (d / SPLITS).is_dir()), None)
    if splits is None:
        raise UserError(f"{root / SPLITS}: missing HMDB51 split folder (looked here and beside)")
    suffix = f"_test_split{fold}.txt"
    files = sorted(splits.glob(f"*{suffix}"))
    if not files:
        raise UserError(f"{splits}: no <class>{suffix} split files")
    records = []
    for path in files:
        cls = path.name[: -len(suffix)]
        for line, text in enumerate(path.read_text().splitlines(), start=1):
            fields = text.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise UserError(f"{path}:{line}: expected '<video>.avi <0|1|2>'")
            if fields[1] == "0":
                continue
            video = root / cls / fields[0]
            if not video.is_file():
                raise UserError(f"{video}: listed in {path}:{line}, but missing")
            split = "train" if fields[1] == "1" else "test"
            records.append(VideoRecord(str(video), cls, source_id(fields[0], cls), split))
    return records


def source_id(name: str, cls: str) -> str:
    """The source video of the clip file ``name`` of class ``cls`` (see the module's notes)."""
    stem = _TAGS.sub("", name.removesuffix(".avi"))
    if stem.lower().endswith(f"_{cls.lower()}"):
        stem = stem[: -len(cls) - 1]
    return stem or name
