"""The generated account: deterministic, realistically shaped, internally consistent."""

from __future__ import annotations

import re
import time
from typing import Any, Dict

from zendesk_fake import TRUTH_TABLES, generate_account
from zendesk_fake.generator import METRIC_SET_ID_BASE, iso_to_epoch, load_data
from zendesk_fake.ground_truth import build_ground_truth
from zendesk_fake.tables import messaging_ticket

NOW = 1_760_000_000.0  # pinned "now": data must not depend on the wall clock then
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = build_ground_truth(generate_account(5, 60, now=NOW))
    again = build_ground_truth(generate_account(5, 60, now=NOW))
    other = build_ground_truth(generate_account(6, 60, now=NOW))
    assert first == again
    assert first["tickets"] != other["tickets"]


def test_every_table_has_rows_even_for_ten_tickets() -> None:
    account = generate_account(1, 10, now=NOW)
    truth = build_ground_truth(account)
    assert set(truth) == set(TRUTH_TABLES)
    empty = [table for table, rows in truth.items() if not rows]
    # conversation logs are the messages of chat tickets, which ten tickets may not hold
    assert empty == ([] if any(messaging_ticket(t) for t in account.tickets) else ["ticket_conversation_logs"])


def test_proportions() -> None:
    account = generate_account(2, 1000, now=NOW)
    n = len(account.tickets)
    comments = sum(1 for a in account.audits for e in a["events"] if e["type"] == "Comment")
    roles = [u["role"] for u in account.users]
    assert n == 1000 and [t["id"] for t in account.tickets] == list(range(1, n + 1))
    assert len(account.users) == 500 and 3 <= roles.count("admin") <= 5
    assert 0.01 <= roles.count("agent") / len(account.users) <= 0.04
    assert len(account.organizations) == 50
    assert 3.5 <= len(account.audits) / n <= 4.5
    assert 2.2 <= comments / n <= 2.8
    assert 5.0 <= len(account.ticket_metric_events) / n <= 7.5
    assert 0.12 <= len(account.satisfaction_ratings) / n <= 0.28
    assert len(account.groups) == 10 and sum(g["deleted"] for g in account.groups) == 1
    staff = sum(1 for r in roles if r != "end-user")
    assert 1.2 <= len(account.group_memberships) / staff <= 1.8
    assert len(account.macros) == 30 and len(account.ticket_forms) == 3
    assert len(account.sla_policies) == 3 and len(account.phone_numbers) == 3
    assert 40 <= len(account.tags) <= 80
    assert 1 <= sum(t["status"] == "deleted" for t in account.tickets) <= 10
    assert any(not u["active"] for u in account.users)


def test_timestamps_are_past_and_consistent() -> None:
    now = time.time()
    account = generate_account(3, 300)
    for ticket in account.tickets:
        updated = iso_to_epoch(ticket["updated_at"])
        assert ISO.match(ticket["created_at"]) and ISO.match(ticket["updated_at"])
        assert iso_to_epoch(ticket["created_at"]) <= updated <= ticket["generated_timestamp"]
        audits = account.audits_by_ticket[ticket["id"]]
        assert audits[0]["events"][0]["type"] == "Comment"
        assert any(e["type"] == "Create" for e in audits[0]["events"])
        assert audits[0]["events"][0]["body"] == ticket["description"]
        assert all(iso_to_epoch(a["created_at"]) <= updated for a in audits)
        assert iso_to_epoch(audits[-1]["created_at"]) == updated
    assert max(t["generated_timestamp"] for t in account.tickets) <= now - 86_400
    assert min(iso_to_epoch(t["created_at"]) for t in account.tickets) >= now - 2 * 86_400 - 730 * 86_400


def test_custom_field_values_have_zendesk_shapes() -> None:
    account = generate_account(4, 400, now=NOW)
    fields = {f["id"]: f for f in account.ticket_fields}
    types = {f["type"] for f in account.ticket_fields}
    assert {"subject", "description", "status", "tickettype", "priority", "group", "assignee"} <= types
    assert {"text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "tagger", "multiselect", "lookup"} <= types
    lookup = next(f for f in account.ticket_fields if f["type"] == "lookup")
    assert lookup["relationship_target_type"] == "zen:user"
    user_ids = {u["id"] for u in account.users}
    seen: Dict[str, set] = {}
    for ticket in account.tickets:
        custom = [f for f in account.ticket_fields if f["removable"]]  # system fields are not removable
        assert [c["id"] for c in ticket["custom_fields"]] == [f["id"] for f in custom]
        for entry in ticket["custom_fields"]:
            field, value = fields[entry["id"]], entry["value"]
            seen.setdefault(field["type"], set()).add(type(value).__name__)
            if value is None:
                continue
            options = [o["value"] for o in field.get("custom_field_options", [])]
            checks: Dict[str, Any] = {
                "checkbox": lambda v: isinstance(v, bool),
                "integer": lambda v: isinstance(v, str) and v.isdigit(),
                "decimal": lambda v: re.fullmatch(r"\d+\.\d{2}", v),
                "date": lambda v: re.fullmatch(r"\d{4}-\d{2}-\d{2}", v),
                "regexp": lambda v: re.fullmatch(field["regexp_for_validation"], v),
                "tagger": lambda v: v in options and v in ticket["tags"],
                "multiselect": lambda v: isinstance(v, list) and set(v) <= set(options) and set(v) <= set(ticket["tags"]),
                "lookup": lambda v: v in user_ids,
                "text": lambda v: isinstance(v, str),
                "textarea": lambda v: isinstance(v, str),
            }
            assert checks[field["type"]](value), (field["type"], value)
    assert seen["checkbox"] == {"bool"} and "NoneType" in seen["text"]
    texts = {e["value"] for t in account.tickets for e in t["custom_fields"] if isinstance(e["value"], str)}
    assert any(re.search("[\u0400-\u04ff]", v) for v in texts), "Cyrillic"
    assert any(re.search("[\u0600-\u06ff]", v) for v in texts), "Arabic (right-to-left)"
    assert any(re.search("[\U0001F300-\U0001FAFF]", v) for v in texts), "emoji"
    user_field_types = {f["key"]: f["type"] for f in account.user_fields}
    assert set(user_field_types.values()) == {"text", "checkbox", "date", "integer", "decimal", "dropdown", "regexp"}
    assert {f["type"] for f in account.organization_fields} == {"text", "dropdown", "integer", "date"}
    for user in account.users:
        assert set(user["user_fields"]) == set(user_field_types)
        assert isinstance(user["user_fields"]["newsletter_opt_in"], bool)
        for key, kind in (("seats", int), ("lifetime_value", float)):
            assert user["user_fields"][key] is None or isinstance(user["user_fields"][key], kind)
        date = user["user_fields"]["contract_start"]
        assert date is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00Z", date)


def test_metric_sets_and_event_types() -> None:
    account = generate_account(5, 300, now=NOW)
    live = [t for t in account.tickets if t["status"] != "deleted"]
    assert set(account.metric_sets) == {t["id"] for t in live}
    assert all(m["id"] == METRIC_SET_ID_BASE + m["ticket_id"] for m in account.metric_sets.values())
    assert not {m["id"] for m in account.metric_sets.values()} & {t["id"] for t in account.tickets}
    event_types = {e["type"] for a in account.audits for e in a["events"]}
    assert {"Comment", "Create", "Change", "Notification", "Cc", "SatisfactionRating"} <= event_types
    assert any(e["attachments"] for a in account.audits for e in a["events"] if e["type"] == "Comment")
    tags_change = next(e for a in account.audits for e in a["events"] if e.get("field_name") == "tags")
    assert isinstance(tags_change["value"], list)
    kinds = {e["type"] for e in account.ticket_metric_events}
    assert {"activate", "fulfill", "apply_sla", "update_status", "breach", "pause"} <= kinds
    assert all("sla" in e for e in account.ticket_metric_events if e["type"] == "apply_sla")
    assert all("status" in e for e in account.ticket_metric_events if e["type"] == "update_status")
    assert any(e.get("deleted") for e in account.ticket_metric_events if e["type"] == "breach")


def test_fixed_tables_are_the_data_files_rows() -> None:
    """Forms, SLA policies and phone numbers are data/*.json's rows, given the account's
    ids, urls, groups and times."""
    account = generate_account(1, 30, now=NOW)
    for table, data in (("ticket_forms", "ticket_forms"), ("sla_policies", "sla_policies"), ("phone_numbers", "phone_numbers")):
        rows = getattr(account, table)
        fixed = load_data(data)
        assert len(rows) == len(fixed) > 0, table
        for row, entry in zip(rows, fixed):
            entry.pop("field_ranges", None)
            assert {k: row[k] for k in entry} == entry, table
    live = [f["id"] for f in account.ticket_fields]
    assert account.ticket_forms[0]["ticket_field_ids"] == live
