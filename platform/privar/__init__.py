"""privar."""
