"""Resource arithmetic: do a study's bundles fit the cluster, and how many at once?

Pure functions over plain dicts (Ray's resource names: ``CPU``, ``GPU``, ``memory`` in bytes),
so the rules are unit-tested without a cluster. A *bundle* is what one placement-group bundle
asks; a *group* is the bundles one trial or farm job reserves together. A *node* is one node's
total resources; a *node type* is what the autoscaler can add (``max_workers`` copies of its
``resources``; ``None`` when its config does not say, as on a cloud that fills them in at
launch).

Why not just let Ray wait: a bundle no node can ever hold waits forever in silence (the issue
that led here: 16 farm bundles of 0.25 GPU on a one-GPU node). Asked up front, the same request
fails in seconds with the study key that made it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from privar.errors import UserError

Bundle = Mapping[str, float]
GiB = 2**30
_EPS = 1e-9  # Ray rounds fractional resources to 1e-4; compare with slack


@dataclass(frozen=True)
class NodeType:
    """A worker type the autoscaler can add: ``max_workers`` nodes of ``resources`` (``None``:
    unknown until launched), of which ``running`` already exist."""

    name: str
    resources: Mapping[str, float] | None
    max_workers: int
    running: int = 0


@dataclass(frozen=True)
class Capacity:
    """The cluster as privar plans against it: the nodes alive now and what the autoscaler
    can still add (empty without an autoscaler)."""

    nodes: tuple[Mapping[str, float], ...]
    node_types: tuple[NodeType, ...] = ()

    def potential_nodes(self) -> list[Mapping[str, float]]:
        """Every node the cluster has or can get (types of unknown size excluded)."""
        extra = [t.resources for t in self.node_types if t.resources is not None
                 for _ in range(max(0, t.max_workers - t.running))]  # fmt: skip
        return [*self.nodes, *extra]

    @property
    def can_grow(self) -> bool:
        return any(t.max_workers > t.running for t in self.node_types)


def fits(bundle: Bundle, node: Mapping[str, float]) -> bool:
    """Whether one node's free ``node`` resources hold ``bundle``."""
    return all(v <= node.get(k, 0.0) + _EPS for k, v in bundle.items() if v > 0)


def copies(group: Sequence[Bundle], nodes: Sequence[Mapping[str, float]]) -> int:
    """How many copies of ``group`` the ``nodes`` hold at once, every bundle on one node
    (bundles of a copy may sit on different nodes, as Ray's PACK strategy allows). Greedy
    first-fit, largest bundle first: exact for the one- and two-bundle groups privar makes."""
    if not group or not nodes:
        return 0
    free = [dict(n) for n in nodes]
    order = sorted(group, key=lambda b: -sum(b.values()))
    n = 0
    while True:
        for bundle in order:
            node = next((f for f in free if fits(bundle, f)), None)
            if node is None:
                return n
            for k, v in bundle.items():
                node[k] = node.get(k, 0.0) - v
        n += 1
        if n >= 100_000:  # an empty bundle fits forever
            return n


def describe(bundle: Bundle) -> str:
    """``{CPU: 1, GPU: 0.5, memory: 2 GiB}`` for messages."""
    parts = []
    for k in sorted(bundle):
        v = bundle[k]
        if k == "memory":
            parts.append(f"memory: {v / GiB:g} GiB")
        elif v:
            parts.append(f"{k}: {v:g}")
    return "{" + ", ".join(parts) + "}"


def addable(capacity: Capacity) -> str:
    """The workers the autoscaler can still add, in words (``1 x gpu_worker, 2 x cpu``)."""
    return ", ".join(f"{t.max_workers - t.running} x {t.name}" for t in capacity.node_types
                     if t.max_workers > t.running)  # fmt: skip


def check_group(group: Sequence[Bundle], capacity: Capacity, keys: Mapping[str, str],
                what: str) -> None:  # fmt: skip
    """Raise a one-line :class:`UserError` when some bundle of ``group`` fits no node the
    cluster has or can add. ``keys`` maps a resource to the study key that asks for it
    (``{"GPU": "resources.gpu"}``), so the message names what to change."""
    nodes = capacity.potential_nodes()
    unknown = any(t.resources is None and t.max_workers > t.running
                  for t in capacity.node_types)  # fmt: skip
    for bundle in group:
        if any(fits(bundle, n) for n in nodes) or unknown:
            continue
        short = [k for k, v in bundle.items() if v > 0 and
                 all(v > n.get(k, 0.0) + _EPS for n in nodes)]  # fmt: skip
        resource = short[0] if short else max(bundle, key=lambda k: bundle[k])
        key = keys.get(resource, resource)
        most = max((n.get(resource, 0.0) for n in nodes), default=0.0)
        most_text = f"{most / GiB:g} GiB" if resource == "memory" else f"{most:g}"
        grow = (" (and the autoscaler can add none larger)" if capacity.node_types
                else " (and no autoscaler can add one)")  # fmt: skip
        raise UserError(f"{key}: {what} asks {describe(bundle)}, but the largest node has "
                        f"{resource} {most_text}{grow}")  # fmt: skip


def waits_for_a_new_node(group: Sequence[Bundle], capacity: Capacity) -> bool:
    """Whether no node alive now holds ``group`` (each bundle on some node), so that it can only
    run on a node the autoscaler adds."""
    return capacity.can_grow and copies(group, capacity.nodes) == 0


def concurrency(group: Sequence[Bundle], capacity: Capacity, wanted: int) -> int:
    """How many ``group`` s can run at once: ``wanted``, capped by what the cluster has now or
    can grow to (at least 1: a group that fits nowhere is :func:`check_group`'s to refuse)."""
    most = copies(group, capacity.potential_nodes())
    if any(t.resources is None and t.max_workers > t.running for t in capacity.node_types):
        most = max(most, wanted)  # unknown node sizes: let Ray and the autoscaler decide
    return max(1, min(wanted, most if most else 1))


def total(nodes: Sequence[Mapping[str, float]], key: str) -> float:
    return math.fsum(n.get(key, 0.0) for n in nodes)
