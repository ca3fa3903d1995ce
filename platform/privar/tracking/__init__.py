"""MLflow tracking: the run tree of DESIGN.md (study -> trial -> farm runs), artifacts and the
model registry. Every call names its experiment and parent explicitly, so a Ray worker logs
into the right place whatever its process-global MLflow state says."""

from privar.tracking.runs import KIND, Tracker, resolve_uri

__all__ = ["KIND", "Tracker", "resolve_uri"]
