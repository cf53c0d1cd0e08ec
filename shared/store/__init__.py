"""The store: the only package that holds SQL (docs/architecture.md#the-store).

schema (migrations) + tables (the schema in force), dialect + engine (what differs between engines: one
module each, sqlite and postgres), writer + writes (the ingest's), reads (the web's), registry (the web's
registry writes and its requests to the ingest), device_rows + listing (the device list).
"""

from shared.store.bulk import add_tag as bulk_add_tag
from shared.store.bulk import matching_ids
from shared.store.bulk import remove_tag as bulk_remove_tag
from shared.store.device_rows import device_dict
from shared.store.device_rows import devices_json as rows_json
from shared.store.dialect import (
    Connection,
    LeadLost,
    StoreUnavailable,
    connect,
    guarded,
    integrity_ok,
    last_event_id,
    read,
    write,
)
from shared.store.lifecycle import (
    acknowledge,
    add_silence,
    alert_objects,
    device_tags,
    expire_silence,
    problems_in_scope,
    prune_silences,
    silence_dict,
    silences,
    silences_by_id,
)
from shared.store.listing import SORTS, SUMMARY_TOP, DeviceQuery, count_headers, list_devices, sort_key, summary
from shared.store.markers import page_markers
from shared.store.notify import (
    close_group,
    drop_items,
    drop_message,
    enqueue,
    forget_rules_except,
    load_state,
    mark_escalated,
    next_message,
    notifications,
    open_group,
    prune_notifications,
    put_items,
    queue_stats,
    record_attempt,
    tell,
    untell,
)
from shared.store.reads import (
    alerts,
    counters,
    device,
    devices,
    devices_json,
    event_ids,
    event_rows_after,
    events_after,
    is_known,
    read_events,
    recent_events,
)
from shared.store.registry import (
    command_done,
    command_pending,
    entry_dict,
    forget,
    forget_device_state,
    forget_devices_state,
    forget_queued,
    kept_secret,
    pending_commands,
    put_entries,
    put_entry,
    queue_command,
    registered_ids,
    registry_entry,
    unregistered_unheard,
)
from shared.store.schema import MIGRATIONS, migrate, open_store
from shared.store.silence_told import mark_told, untold_silences
from shared.store.timeline import Timeline, timeline
from shared.store.writer import Writer
from shared.store.writes import (
    add_counters,
    all_alerts,
    all_flaps,
    ensure_device,
    get_meta,
    insert_event,
    insert_events,
    liveness_all,
    mark_alive,
    mark_all_alive,
    mark_overdue_offline,
    prune_events,
    record_delivered,
    record_seen,
    set_heartbeat,
    set_heartbeat_if_empty,
    set_meta,
    set_playback,
    shortest_timeout,
    upsert_alert,
    was_delivered,
    write_alerts,
    write_flaps,
)

__all__ = [
    "MIGRATIONS", "Connection", "StoreUnavailable", "Writer", "add_counters", "alerts", "all_alerts", "connect",
    "counters", "device", "devices", "devices_json", "ensure_device", "event_ids", "event_rows_after",
    "events_after", "get_meta", "insert_event", "integrity_ok", "is_known", "last_event_id", "liveness_all",
    "mark_alive", "mark_all_alive", "migrate", "open_store", "mark_overdue_offline", "prune_events",
    "read", "read_events", "recent_events", "record_delivered", "record_seen", "set_heartbeat",
    "set_heartbeat_if_empty",
    "set_meta", "set_playback", "upsert_alert", "was_delivered",
    "shortest_timeout", "write", "guarded", "insert_events", "write_alerts", "LeadLost", "kept_secret",
    "close_group", "drop_items", "mark_escalated",
    "drop_message", "enqueue", "forget_rules_except", "load_state", "next_message", "notifications", "open_group",
    "prune_notifications", "put_items", "queue_stats", "record_attempt", "tell", "untell", "command_done",
    "entry_dict", "forget", "forget_device_state", "pending_commands", "put_entries", "put_entry", "registered_ids",
    "registry_entry", "forget_queued", "SORTS", "DeviceQuery", "list_devices", "sort_key", "summary",
    "device_dict", "rows_json", "all_flaps", "write_flaps", "acknowledge", "add_silence",
    "alert_objects", "device_tags", "expire_silence", "prune_silences", "silence_dict", "silences", "command_pending",
    "queue_command", "problems_in_scope", "silences_by_id", "forget_devices_state", "unregistered_unheard",
    "Timeline", "timeline", "mark_told", "untold_silences",
    "bulk_add_tag", "bulk_remove_tag", "matching_ids",
    "count_headers", "page_markers", "SUMMARY_TOP",
]  # fmt: skip
