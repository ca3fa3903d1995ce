"""The ``kth`` adapter: KTH human actions (Schuldt et al., ICPR 2004), as BDQ (Kumawat and
Nagahara, CVPR 2022) uses it: the 6 actions to recognise, the 25 actors to hide.

Layout: ``root/<action>/personXX_<action>_dY_uncomp.avi`` as KTH ships it (one zip per action), or
all such files in ``root`` itself. Actions: boxing, handclapping, handwaving, jogging, running,
walking; persons 01-25; scenarios d1 (outdoors), d2 (outdoors, scale variation), d3 (outdoors,
other clothes), d4 (indoors). A full copy holds 599 videos: person13_handclapping_d3 was never
published.

privacy = the actor, "person01" ... "person25".

Splits (option ``split``):

* ``"scenario"`` (default, for privacy work): per video, so that every actor is in every split.
  For person p, scenario d((p - 1) mod 4 + 1) is test, the next scenario (d4 wraps to d1) is val
  and the other two are train: each split holds every actor doing every action, and every split
  mixes all four scenarios (no split is all indoors). With ``val=False`` the val scenario goes to
  train (3/4 train, 1/4 test). BDQ follows Wu et al. and publishes no per-video list; this
  rotation is ours.
* ``"persons"``: KTH's official split by person: train 11-18; val 19, 20, 21, 23, 24, 25, 01, 04;
  test 22, 02, 03, 05-10. No actor is in two splits, so it suits action recognition only.
"""

from __future__ import annotations

import re
from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.manifest import VideoRecord
from privar.errors import UserError

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
PERSON_SPLIT = {
    **dict.fromkeys((11, 12, 13, 14, 15, 16, 17, 18), "train"),
    **dict.fromkeys((19, 20, 21, 23, 24, 25, 1, 4), "val"),
    **dict.fromkeys((22, 2, 3, 5, 6, 7, 8, 9, 10), "test"),
}
_NAME = re.compile(r"person(\d\d)_([a-z]+)_d([1-4])_uncomp\.avi")


@ADAPTERS.register("kth")
def scan(root: Path, split: str = "scenario", val: bool = True) -> list[VideoRecord]:
    """KTH videos under ``root`` (flat or in action folders), split by ``"scenario"`` or
    ``"persons"``."""
    if split not in ("scenario", "persons"):
        raise UserError(f"kth: split must be 'scenario' or 'persons', not {split!r}")
    records: dict[str, VideoRecord] = {}
    for path in sorted(root.glob("*.avi")) + sorted(root.glob("*/*.avi")):
        m = _NAME.fullmatch(path.name)
        if m is None:
            raise UserError(f"{path}: not a KTH video name (personXX_<action>_dY_uncomp.avi)")
        person, action, scenario = int(m[1]), m[2], int(m[3])
        if action not in ACTIONS or not 1 <= person <= 25:
            raise UserError(f"{path}: unknown KTH action or person (persons 01-25, {ACTIONS})")
        if path.parent != root and path.parent.name != action:
            raise UserError(f"{path}: a {action} video in the folder {path.parent.name}/")
        if path.name in records:
            raise UserError(f"{path}: the same video is also at {records[path.name].path}")
        if split == "persons":
            where = PERSON_SPLIT[person]
        else:
            where = _scenario_split(person, scenario, val)
        records[path.name] = VideoRecord(str(path), action, f"person{person:02d}", where)
    if not records:
        raise UserError(
            f"{root}: no KTH videos (personXX_<action>_dY_uncomp.avi) here or in <action>/ folders"
        )
    return list(records.values())


def _scenario_split(person: int, scenario: int, val: bool) -> str:
    test = (person - 1) % 4 + 1
    if scenario == test:
        return "test"
    if scenario == test % 4 + 1:
        return "val" if val else "train"
    return "train"
