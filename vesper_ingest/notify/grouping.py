"""Which events a rule tells its channel of, gathered into one message per group window; time is passed in.

Pure and in memory: `Grouper` holds each rule's open group and what the rule has told its channel
is wrong, and records every change as an op for the sink to write in the same transaction as its
position, so a restart neither repeats nor loses a message (docs/notifications.md#grouping).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import notify_text
from shared.notify_config import SEVERITIES, Rule
from shared.severity import ALERT_SEVERITY
from shared.vocabulary import EVENT_TYPES
from vesper_ingest.notify import escalation
from vesper_ingest.notify.escalation import Escalation

PROBLEMS = frozenset(name for name, t in EVENT_TYPES.items() if t.problem)  # the rest: one-off events
RECOVERY = {name: t.ends for name, t in EVENT_TYPES.items() if t.ends}  # recovery type -> the problem it ends

Key = tuple[str, str]  # (device_id, subject): subject is the subsystem, or "" for the device's liveness


@dataclass
class Item:
    """One line of an open group."""

    kind: str  # problem | resolved | event
    category: str
    event_id: int
    line: str


@dataclass
class Told:
    """Something a rule's channel was told is wrong and not yet told is over."""

    category: str
    told_at: float
    line: str
    acked: bool = False  # an operator is on it: no reminders until a new state
    escalate_at: float | None = None  # when it is told to the rule's escalate_to, unless acknowledged or over first
    escalated_at: float | None = None  # when it was (once)


@dataclass
class Group:
    """A rule's open group: what happened since opened_at, sent at due_at."""

    opened_at: float
    due_at: float
    items: dict[Key, Item] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """A message ready to queue for a channel."""

    rule: str
    channel: str
    title: str
    body: str
    notify_type: str
    event_ids: list[int]


def rule_key(index: int, rule: Rule) -> str:
    """A rule's identity in the database: its place and its channel."""
    return f"{index}:{rule.channel}"


def settled(event: dict[str, Any]) -> dict[str, Any]:
    """alert_flapping_ended is, to what a channel was told, the change to the state it names; others as they are."""
    if event["type"] != "alert_flapping_ended":
        return event
    return now_in(event, event["payload"]["subsystem"], event["payload"]["state"], "flapping")


def now_in(event: dict[str, Any], subsystem: str, state: str, after: str) -> dict[str, Any]:
    """An alert or alert_cleared, carried by `event`, saying a subsystem is in `state` now that `after` is over."""
    if state == "CLEARED":
        return {**event, "type": "alert_cleared", "payload": {"subsystem": subsystem, "previous_state": after}}
    payload = {"subsystem": subsystem, "state": state, "message": f"no longer {after}", "previous_state": None}
    return {**event, "type": "alert", "severity": ALERT_SEVERITY[state], "payload": payload}


def subject(event: dict[str, Any]) -> str:
    """The subsystem an event is about, or "" when it is about the device itself."""
    payload = event.get("payload")
    return str(payload.get("subsystem", "")) if isinstance(payload, dict) and event["type"] != "info" else ""


class Grouper:
    """Every rule's groups and told-sets, changed by events and by time."""

    def __init__(
        self,
        rules: list[Rule],
        public_url: str = "",
        tags_of: Callable[[str], set[str]] | None = None,
        silenced: Callable[[str, str, float], bool] | None = None,
    ):
        self.rules = {rule_key(i, r): r for i, r in enumerate(rules)}
        self.public_url = public_url
        self.tags_of = tags_of or (lambda device_id: set())  # the registry's tags, once there is one
        self.silenced = silenced or (lambda device_id, subject, now: False)  # shared/silences.py decides
        self.groups: dict[str, Group] = {}
        self.told: dict[str, dict[Key, Told]] = {key: {} for key in self.rules}
        self.held: dict[str, set[Key]] = {key: set() for key in self.rules}  # escalations a silence holds
        self.ops: list[tuple[Any, ...]] = []  # what changed, for the sink to write; it clears them

    def offer(self, event: dict[str, Any], now: float) -> None:
        """One committed event, in id order; a flood's end also settles what its device's alerts are now."""
        self._offer(settled(event), now)
        if event["type"] == "device_flooding_ended":
            for state_now in self._after_flood(event):
                self._offer(state_now, now)

    def _after_flood(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Each alert of the device told, pending or active now, in the state the flood's end names (or cleared)."""
        device, active = event["source_id"], event["payload"].get("alerts") or {}
        held = [*self.told.values(), *(g.items for g in self.groups.values())]
        known = {what[1] for keys in held for what in keys if what[0] == device and what[1]}
        return [now_in(event, sub, active.get(sub, "CLEARED"), "flooding") for sub in sorted(known | set(active))]

    def _offer(self, event: dict[str, Any], now: float) -> None:
        if event["type"] == "alert_acknowledged":
            self._acknowledged(event)
        elif event["type"] == "alert_flapping":
            self._flapping(event)
        muted = self.silenced(event["source_id"], subject(event), now)  # kept true, told to no one
        for key, rule in self.rules.items():
            if rule.tags and not (self.tags_of(event["source_id"]) & set(rule.tags)):
                continue
            kind = self._kind(rule, event)
            if kind == "problem" and not muted:
                self._problem(key, rule, event, now)
            elif kind == "resolved":
                self._resolved(key, rule, event, now, muted)
            elif kind == "event" and not muted:
                self._put(key, rule, (event["source_id"], f"#{event['id']}"), self._item("event", event), now)

    def _kind(self, rule: Rule, event: dict[str, Any]) -> str | None:
        kind = event["type"]
        if kind in RECOVERY:
            return "resolved" if RECOVERY[kind] in rule.types else None
        if kind not in rule.types:
            return None
        if kind == "alert" and SEVERITIES.index(event["severity"]) < SEVERITIES.index(rule.min_severity):
            return "resolved"  # below the rule's severity now: what it was told of is over
        return "problem" if kind in PROBLEMS else "event"

    def _item(self, kind: str, event: dict[str, Any]) -> Item:
        return Item(kind, notify_text.category(event), event["id"], notify_text.line(event))

    def _acknowledged(self, event: dict[str, Any]) -> None:
        """Reminders of that alert stop, for every rule that told it."""
        what = (event["source_id"], subject(event))
        for key, told in self.told.items():
            if what in told and not told[what].acked:
                told[what].acked = True
                escalation.stop(told[what])
                self.ops.append(("tell", key, what, told[what]))

    def _flapping(self, event: dict[str, Any]) -> None:
        """A change not yet sent is dropped: flapping hides its recovery, and the flap's end tells the settled state."""
        what = (event["source_id"], subject(event))
        for key in self.rules:
            item = self._pending(key, what)
            if item is not None and item.kind == "problem":
                del self.groups[key].items[what]
                self.ops.append(("drop", key, what))

    def _problem(self, key: str, rule: Rule, event: dict[str, Any], now: float) -> None:
        what = (event["source_id"], subject(event))
        item, told = self._pending(key, what), self.told[key].get(what)
        if told is not None and told.acked and event["payload"].get("state") != event["payload"].get("previous_state"):
            told.acked, told.told_at = False, now  # a new state is unacknowledged again: reminders resume from now
            escalation.rearm(told, rule, now)
            self.ops.append(("tell", key, what, told))
        if item is None and told is not None and told.category == notify_text.category(event):
            if told.line != (line := notify_text.line(event)):
                told.line = line  # no message now, but a reminder says what it is now (FAILED, not CRITICAL)
                self.ops.append(("tell", key, what, told))
            return  # the channel already knows: a new message of the same severity tells it nothing
        self._put(key, rule, what, self._item("problem", event), now)

    def _resolved(self, key: str, rule: Rule, event: dict[str, Any], now: float, muted: bool = False) -> None:
        what = (event["source_id"], subject(event))
        item, told = self._pending(key, what), self.told[key].pop(what, None)
        if told is not None:
            self.ops.append(("untell", key, what))
        if item is not None and item.kind == "problem":
            del self.groups[key].items[what]  # a blip: over before its group went out
            self.ops.append(("drop", key, what))
        if told is not None and rule.resolved and not muted:
            self._put(key, rule, what, self._item("resolved", event), now)

    def _pending(self, key: str, what: Key) -> Item | None:
        group = self.groups.get(key)
        return group.items.get(what) if group else None

    def _put(self, key: str, rule: Rule, what: Key, item: Item, now: float) -> None:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(now, now + rule.group_wait_s)
            self.ops.append(("open", key, group.opened_at, group.due_at))
        group.items[what] = item
        self.ops.append(("put", key, what, item))

    def forget(self, device_ids: set[str]) -> None:
        """Drop what is held of forgotten devices: if one comes back it is new, and is told of anew."""
        for held in [*self.told.values(), *(g.items for g in self.groups.values())]:
            for what in [w for w in held if w[0] in device_ids]:
                del held[what]

    def next_due(self) -> float | None:
        """When close_due or escalations next has something to do (a group's end, a reminder, an escalation)."""
        times: list[float | None] = [g.due_at for g in self.groups.values()]
        for key, told in self.told.items():
            repeat = self.rules[key].repeat_after_s
            waiting = [t.told_at for t in told.values() if not t.acked]
            if repeat > 0 and waiting:
                times.append(min(waiting) + repeat)
            times.append(escalation.next_at(told, self.rules[key], self.held[key]))
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def close_due(self, now: float) -> list[Message]:
        """Every group whose window has passed becomes a message (none if blips emptied it); reminders too."""
        messages = []
        for key in [k for k, g in self.groups.items() if g.due_at <= now]:
            group = self.groups.pop(key)
            self.ops.append(("close", key))
            for what in [w for w, item in group.items.items() if item.kind != "resolved" and self.silenced(*w, now)]:
                del group.items[what]  # silenced since it was grouped: told at the silence's end if still active
            for what, item in group.items.items():
                if item.kind == "problem":
                    told = Told(item.category, now, item.line)
                    escalation.carry(told, self.told[key].get(what), self.rules[key], now)
                    self.told[key][what] = told
                    self.ops.append(("tell", key, what, told))
            if group.items:
                messages.append(self._message(key, list(group.items.items())))
        return messages + self._reminders(now)

    def _reminders(self, now: float) -> list[Message]:
        messages = []
        for key, told in self.told.items():
            repeat = self.rules[key].repeat_after_s
            due = [(what, t) for what, t in told.items() if repeat > 0 and not t.acked and t.told_at + repeat <= now]
            if not due:
                continue
            for what, t in due:
                t.told_at = now  # a silenced one skips this reminder
                self.ops.append(("tell", key, what, t))
            items = [(what, Item("problem", t.category, 0, t.line)) for what, t in due if not self.silenced(*what, now)]
            if not items:
                continue
            messages.append(self._message(key, items, notify_text.REMINDER))
        return messages

    def escalations(self, now: float) -> list[Escalation]:
        """Each rule's problems due to escalate now (silenced ones held); the sink marks them and calls escalated."""
        due = [(key, escalation.due(told, self.rules[key], self.held[key], self.silenced, now)) for key, told in
               self.told.items()]  # fmt: skip
        return [Escalation(key, self.rules[key].escalate_to, keys) for key, keys in due if keys]

    def escalated(self, esc: Escalation, lines: dict[Key, tuple[str, str]], now: float) -> Message | None:
        """The escalation's problems the store marked escalated now ((category, line) of each) become its message."""
        for what in esc.keys:  # one the store did not mark was escalated or acknowledged there: stop it here too
            told = self.told[esc.rule].get(what)
            if told is not None:
                told.escalate_at, told.escalated_at = None, now
        items = [(what, Item("problem", category, 0, line)) for what, (category, line) in sorted(lines.items())]
        after = self.rules[esc.rule].escalate_after_s
        return self._message(esc.rule, items, notify_text.escalation_heading(after), esc.channel) if items else None

    def unhold(self) -> None:
        """The silences changed: escalations they held are looked at again."""
        for held in self.held.values():
            held.clear()

    def _message(
        self, key: str, items: list[tuple[Key, Item]], heading: str = notify_text.HEADING, channel: str = ""
    ) -> Message:
        lines = [(item.category, what[0], item.line) for what, item in items]
        title, body, notify_type = notify_text.compose(lines, self.public_url, heading)
        event_ids = sorted(item.event_id for _, item in items if item.event_id)
        return Message(key, channel or self.rules[key].channel, title, body, notify_type, event_ids)
