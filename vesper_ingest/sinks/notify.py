"""The notification sink: committed events become grouped messages in the delivery queue (docs/notifications.md).

The ingest is the one sender (one ingest per database), so every message is decided once. The
grouper's changes, the queued messages and this sink's position are written in one transaction:
a crash or restart neither loses nor repeats a decision. On its very first start it begins at the
newest event: history is not replayed.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable

from shared import store
from shared.notify_config import NotifyConfig
from vesper_ingest.notify.escalation import Escalation
from vesper_ingest.notify.grouping import Group, Grouper, Item, Message, Told
from vesper_ingest.notify.silencing import Silencing
from vesper_ingest.sinks import Backlog, Wire

log = logging.getLogger(__name__)

CHUNK = 1000


class NotifySink:
    """Feeds the grouper in id order and queues what it decides."""

    marker = "notified_id"

    def __init__(
        self, writer: store.Writer, cfg: NotifyConfig, clock: Callable[[], float], queued: Callable[[str], None]
    ) -> None:
        self.writer = writer
        self.cfg = cfg
        self.clock = clock
        self.queued = queued  # told the channel name of each queued message (wakes its worker)
        self.done = 0
        self.silences = Silencing()
        self.grouper = self._grouper()

    def _grouper(self) -> Grouper:
        return Grouper(list(self.cfg.rules), self.cfg.public_url, self._tags, self._silenced)

    def start(self, position: int | None) -> None:
        """Resume from the persisted position and state; on the first start, from the newest event."""
        with self.writer.transaction() as conn:
            if position is None:
                position = store.last_event_id(conn)
                store.set_meta(conn, self.marker, str(position))
            store.forget_rules_except(conn, list(self.grouper.rules))
        self.done = position
        self._load()

    def _load(self) -> None:
        """The grouper's state as the database holds it."""
        self.grouper = self._grouper()
        self.silences.load(self.writer.conn)
        groups, items, told = store.load_state(self.writer.conn)
        for rule, opened_at, due_at in groups:
            self.grouper.groups[rule] = Group(opened_at, due_at)
        for rule, device_id, subject, kind, category, event_id, line in items:
            if rule in self.grouper.groups:
                self.grouper.groups[rule].items[(device_id, subject)] = Item(kind, category, event_id, line)
        for rule, device_id, subject, category, told_at, line, acked, escalate_at, escalated_at in told:
            entry = Told(category, told_at, line, bool(acked), escalate_at, escalated_at)
            self.grouper.told[rule][(device_id, subject)] = entry

    def _tags(self, device_id: str) -> set[str]:
        """The registry's tags of a device (asked only for rules that name tags)."""
        entry = store.registry_entry(self.writer.conn, device_id)
        return set(json.loads(entry[2])) if entry else set()

    def _entry(self, device_id: str) -> tuple[set[str], str | None]:
        """The registry's tags and site of a device (asked only while a silence names a tag or a site)."""
        entry = store.registry_entry(self.writer.conn, device_id)
        return (set(json.loads(entry[2])), entry[1]) if entry else (set(), None)

    def _silenced(self, device_id: str, subject: str, now: float) -> bool:
        """True while a silence covers it (its registry entry is read only when a silence names a tag or site)."""
        return self.silences.covers(device_id, subject, now, self._entry)

    def position(self) -> int:
        """Every event up to here has been offered to the grouper."""
        return self.done

    def idle(self) -> bool:
        """Nothing in flight: the queue is the database's."""
        return True

    def deliver(self, fresh: list[Wire], backlog: Backlog) -> int:
        """Offer every committed event after the position, then send what is due; returns events offered."""
        try:
            return self._deliver(fresh, backlog)
        except store.StoreUnavailable:
            log.exception("notifications: database unavailable; will resume from the last saved position")
            self.done = int(store.get_meta(self.writer.conn, self.marker, "0") or 0)
            self._load()
            return 0

    def _deliver(self, fresh: list[Wire], backlog: Backlog) -> int:
        offered = 0
        ended = self.silences.refresh(self.writer.conn, self.clock())
        for problem in ended:
            self.grouper.offer(problem, self.clock())  # still wrong at a silence's end: told once, unless told before
        if self.silences.changed:
            self.grouper.unhold()  # an escalation a silence held goes now if no other silence holds it
            self._commit([])
        chunk = fresh if fresh and fresh[0][0] == self.done + 1 else backlog(self.done, CHUNK)
        while chunk:
            now = self.clock()
            for _, text in chunk:
                self.grouper.offer(json.loads(text), now)
            self.done = chunk[-1][0]
            offered += len(chunk)
            if self.grouper.ops:
                self._commit([])
            chunk = [] if chunk is fresh else backlog(self.done, CHUNK)
        due, now = self.grouper.next_due(), self.clock()
        if due is not None and due <= now:
            self._commit(self.grouper.close_due(now), self.grouper.escalations(now))
        return offered

    def _commit(self, messages: list[Message], escalations: list[Escalation] | None = None) -> None:
        """Write the grouper's changes, queue the messages, mark and queue escalations and save the position, in one
        transaction: an escalation is queued by the transaction that marks it escalated (compare-and-set), once."""
        now = self.clock()
        with self.writer.transaction() as conn:
            _write(conn, self.grouper.ops)
            marked = [self.grouper.escalated(e, store.mark_escalated(conn, e.rule, e.keys, now), now) for e in
                      escalations or []]  # fmt: skip
            messages = [*messages, *(m for m in marked if m)]
            for m in messages:
                store.enqueue(conn, m.channel, m.title, m.body, m.notify_type, m.event_ids, now)
            store.set_meta(conn, self.marker, str(self.done))
            self.silences.save(conn)
        self.grouper.ops.clear()
        for m in messages:
            log.info("notification queued for %s: %s", m.channel, m.title)
            self.queued(m.channel)


def _open(conn: store.Connection, ops: list[tuple]) -> None:
    for _, rule, opened_at, due_at in ops:
        store.open_group(conn, rule, opened_at, due_at)


def _close(conn: store.Connection, ops: list[tuple]) -> None:
    for _, rule in ops:
        store.close_group(conn, rule)


def _put(conn: store.Connection, ops: list[tuple]) -> None:
    store.put_items(conn, [(r, d, s, i.kind, i.category, i.event_id, i.line) for _, r, (d, s), i in ops])


def _tell(conn: store.Connection, ops: list[tuple]) -> None:
    store.tell(conn, [(r, d, s, *_told_row(t)) for _, r, (d, s), t in ops])


def _told_row(t: Told) -> tuple:
    return t.category, t.told_at, t.line, int(t.acked), t.escalate_at, t.escalated_at


WRITERS = {
    "open": _open,
    "close": _close,
    "put": _put,
    "drop": lambda conn, ops: store.drop_items(conn, [(r, *what) for _, r, what in ops]),
    "tell": _tell,
    "untell": lambda conn, ops: store.untell(conn, [(r, *what) for _, r, what in ops]),
}


def _write(conn: store.Connection, ops: list[tuple]) -> None:
    """The grouper's changes in order, each run of one kind as one statement (a storm's 100,000 items too)."""
    for name, run in itertools.groupby(ops, key=lambda op: op[0]):
        WRITERS[name](conn, list(run))
