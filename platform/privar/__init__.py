"""privar: privacy-preserving action recognition studies.

The registries are reachable from the top (``privar.create_encoder("bdq")``), imported on first
use so that ``privar --help`` does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "create_encoder": "privar.encoders",
    "list_encoders": "privar.encoders",
    "create_action_model": "privar.models",
    "list_action_models": "privar.models",
    "create_privacy_model": "privar.models",
    "list_privacy_models": "privar.models",
    "create_reconstruction_model": "privar.models",
    "list_reconstruction_models": "privar.models",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'privar' has no attribute {name!r}")
