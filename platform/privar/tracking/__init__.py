"""MLflow tracking: the run tree of DESIGN.md (study -> trial -> farm runs), its tags
(:mod:`privar.tracking.runs` owns them all) and artifacts, the transport by which encoders
cross nodes. Every call names its experiment and parent explicitly, so a Ray worker logs into
the right place whatever its process-global MLflow state says. What a reader sees is made here
too: run names and flat params (:mod:`~privar.tracking.names`), sample pictures
(:mod:`~privar.tracking.images`), encoders as MLflow models (:mod:`~privar.tracking.models`). The
front (registry aliases, export, report) lives above, in :mod:`privar.front`."""

from privar.tracking.runs import KIND, Tracker, resolve_uri

__all__ = ["KIND", "Tracker", "resolve_uri"]
