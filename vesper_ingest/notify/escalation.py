"""When nobody acknowledges (§14): which told problems are due to be told to a rule's `escalate_to`; time passed in.

A problem a rule told is due `escalate_after_s` after it was first told (`Told.escalate_at`); an acknowledgement or
its end stops it (the grouper clears `escalate_at`, or forgets the problem). Due ones are gathered like any group:
sent when the first has waited the rule's `group_wait_s`, with every other one due by then. One a silence covers
at that moment is held (kept due, left out of `next_at`) until the silences change; then it is looked at again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shared.notify_config import Rule

Key = tuple[str, str]  # (device_id, subject), as grouping.Key


class Escalating(Protocol):
    """What a told problem holds of its escalation (grouping.Told)."""

    acked: bool
    escalate_at: float | None
    escalated_at: float | None


@dataclass(frozen=True)
class Escalation:
    """A rule's problems due now, to be marked escalated and told to its escalate_to, in one transaction."""

    rule: str
    channel: str
    keys: list[Key]


def rearm(told: Escalating, rule: Rule, now: float) -> None:
    """Unacknowledged from now on (first told, or a new state after an acknowledgement): due escalate_after_s from
    now, unless it escalated already (once per problem)."""
    if told.escalated_at is None and rule.escalate_after_s > 0:
        told.escalate_at = now + rule.escalate_after_s


def carry(told: Escalating, before: Escalating | None, rule: Rule, now: float) -> None:
    """A problem told again (its severity changed) keeps its escalation; one told anew, or acknowledged before, is
    armed from now."""
    if before is not None and (before.escalated_at is not None or (before.escalate_at and not before.acked)):
        told.escalate_at, told.escalated_at = before.escalate_at, before.escalated_at
    else:
        rearm(told, rule, now)


def stop(told: Escalating) -> None:
    """An acknowledgement: no escalation (until a new state rearms it)."""
    told.escalate_at = None


def _waiting(told: dict[Key, Escalating], held: set[Key]) -> list[tuple[Key, float]]:
    return [
        (what, t.escalate_at)
        for what, t in told.items()
        if t.escalate_at is not None and t.escalated_at is None and not t.acked and what not in held
    ]


def next_at(told: dict[Key, Escalating], rule: Rule, held: set[Key]) -> float | None:
    """When the rule's next escalation goes (the first due one's time plus group_wait_s), or None."""
    if not rule.escalate_to:
        return None
    times = [at for _, at in _waiting(told, held)]
    return min(times) + rule.group_wait_s if times else None


def due(
    told: dict[Key, Escalating], rule: Rule, held: set[Key], silenced: Callable[[str, str, float], bool], now: float
) -> list[Key]:
    """The problems to escalate now, in key order; those a silence covers are added to `held` instead."""
    if not rule.escalate_to:
        return []
    ready = [(what, at) for what, at in _waiting(told, held) if at <= now]
    if not ready or min(at for _, at in ready) + rule.group_wait_s > now:
        return []
    keys = []
    for what, _ in sorted(ready):
        if silenced(*what, now):
            held.add(what)
        else:
            keys.append(what)
    return keys
