"""The adversary farm: a finished candidate encoder, frozen, attacked afresh by privacy
adversaries, a reconstruction model and a fresh action model (``attacks``), scored with the
image metrics of ``metrics``. No Ray and no MLflow here: the caller schedules and logs."""
