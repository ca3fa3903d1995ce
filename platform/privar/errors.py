"""Errors a user can cause. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: a file, a field or an address.

    The message must name the thing at fault (``studies/x.yaml: data.size: expected ...``),
    because the CLI prints it as the only line the user sees.
    """


class BrokenVideo(Exception):
    """A video that cannot be decoded. It is quarantined with ``reason``, never fatal."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
