"""Edge-case data injected into a running fake Zendesk, for tests/test_edge_data.py.

Every helper edits `fake.account` (the rows the fake serves and `ground_truth()` reads)
the way Zendesk data can look in the wild: very wide and very long rows, emoji and
right-to-left text, keys that are null or missing, more rows in one second than an
export page holds. Edits of existing rows that keep their timestamps need nothing
else: the fake's export indexes hold the same row objects. New rows and moved
timestamps need the indexes rebuilt, see `FakeZendesk.refresh`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from zendesk_fake.generator import TICKET_FIELD_TYPES, iso

Row = Dict[str, Any]

#: Subject and comment texts mixing Hebrew and Arabic (right-to-left) with emoji that are
#: several code points each (skin tone, ZWJ family, flags), astral-plane letters, directional
#: marks and overrides, combining Hebrew points and a newline.
RTL_EMOJI_SUBJECT = "שלום 👋🏽 مرحبا بالعالم — عميل 👩‍👩‍👧‍👦 🇮🇱🇸🇦 \u200fסוף\u200e 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
RTL_EMOJI_BODY = (
    "سطر أول: الطلب رقم ١٢٣ لم يصل بعد 📦🚚\n"
    "שורה שנייה עם ניקוד: שָׁלוֹם עֲלֵיכֶם 🙏🏿\n"
    "\u202eRLO override\u202c mixed LTR/RTL: order #42 ← تم ✔️ 🏳️‍🌈 😀😃😄"
)
RTL_USER_NAME = "فاطمة بنت محمد 🧕🏾 / רבקה"

#: Ticket keys Zendesk may leave out of a row; none of them is the export's cursor.
OPTIONAL_TICKET_KEYS = (
    "subject", "raw_subject", "priority", "type", "assignee_id", "group_id", "organization_id",
    "due_at", "external_id", "satisfaction_rating", "collaborator_ids", "follower_ids",
    "email_cc_ids", "problem_id", "recipient", "via",
)


def live_tickets(fake: Any) -> List[Row]:
    return [t for t in fake.account.tickets if t["status"] != "deleted"]


def _custom_field_value(fake: Any, field: Row, i: int) -> Any:
    """A set value of the field's type, in the shape Zendesk sends for tickets (numbers as
    digit strings, dates YYYY-MM-DD)."""
    ftype = field["type"]
    if ftype == "text":
        return f"wide text {i} ✓ نص"
    if ftype == "textarea":
        return f"line one {i}\nline two שורה"
    if ftype == "checkbox":
        return i % 2 == 0
    if ftype == "date":
        return f"2024-02-{1 + i % 28:02d}"
    if ftype == "integer":
        return str(1000 + i)
    if ftype == "decimal":
        return f"{i}.25"
    if ftype == "regexp":
        return f"ABC-{i:04d}"
    if ftype == "tagger":
        return field["custom_field_options"][i % len(field["custom_field_options"])]["value"]
    if ftype == "multiselect":
        return [o["value"] for o in field["custom_field_options"][: 1 + i % 3]]
    if ftype == "lookup":
        return fake.account.end_user_ids[i % len(fake.account.end_user_ids)]
    raise ValueError(ftype)


def add_wide_ticket(fake: Any, n_fields: int = 200) -> Tuple[int, Dict[str, Tuple[str, Any]]]:
    """Create `n_fields` ticket field definitions of mixed types (through the fake's own
    `add_custom_field`, which also gives ~10% of tickets a value) and give one ticket a
    value for every custom field of the account. Returns the ticket id and, per field
    id, (type, value)."""
    for i in range(n_fields):
        fake.add_custom_field("ticket", TICKET_FIELD_TYPES[i % len(TICKET_FIELD_TYPES)])
    ticket = live_tickets(fake)[10]
    fields = fake.account.custom_ticket_fields
    assert len(fields) >= n_fields
    values = {str(f["id"]): (f["type"], _custom_field_value(fake, f, i)) for i, f in enumerate(fields)}
    ticket["custom_fields"] = [{"id": f["id"], "value": values[str(f["id"])][1]} for f in fields]
    return ticket["id"], values


def add_many_tags(fake: Any, n_tags: int = 10_000) -> Tuple[int, List[str]]:
    """One ticket carries `n_tags` tags (some non-ASCII); the account's tag list follows."""
    ticket = live_tickets(fake)[20]
    tags = [f"edge_{i:05d}" if i % 10 else f"وسم_{i:05d}" for i in range(n_tags)]
    ticket["tags"] = list(ticket["tags"]) + tags
    fake.account.recount_tags()
    return ticket["id"], ticket["tags"]


def write_rtl_and_emoji(fake: Any) -> Dict[str, Any]:
    """Emoji and right-to-left text in a ticket's subject and description, in one of its
    comments (body, plain and HTML body), and in a user's name."""
    ticket = live_tickets(fake)[30]
    ticket["subject"] = ticket["raw_subject"] = RTL_EMOJI_SUBJECT
    ticket["description"] = RTL_EMOJI_BODY
    comment = next(
        e for a in fake.account.audits_by_ticket[ticket["id"]] for e in a["events"] if e["type"] == "Comment"
    )
    comment["body"] = comment["plain_body"] = RTL_EMOJI_BODY
    comment["html_body"] = '<div class="zd-comment" dir="auto">' + RTL_EMOJI_BODY.replace("\n", "<br>") + "</div>"
    user = fake.account.users[25]
    user["name"] = RTL_USER_NAME
    return {"ticket_id": ticket["id"], "comment_id": comment["id"], "user_id": user["id"]}


def strip_and_null(fake: Any) -> Dict[str, Any]:
    """A ticket with several optional keys missing entirely, a user whose email is null,
    a user without phone, tags and user fields, an organization without a name and fields."""
    ticket = live_tickets(fake)[40]
    for key in OPTIONAL_TICKET_KEYS:
        ticket.pop(key, None)
    active = [u for u in fake.account.users if u["active"] and u["role"] == "end-user"]
    null_email, bare = active[5], active[6]
    null_email["email"] = None
    for key in ("phone", "tags", "user_fields", "photo", "external_id"):
        bare.pop(key, None)
    org = fake.account.organizations[2]
    org["name"] = None
    org.pop("organization_fields", None)
    org.pop("domain_names", None)
    return {"ticket_id": ticket["id"], "null_email_user": null_email["id"], "bare_user": bare["id"], "org_id": org["id"]}


def add_same_second_rows(fake: Any, table: str, count: int, epoch: int) -> List[int]:
    """`count` new rows of a time-based export that all carry the timestamp `epoch`: ticket
    metric events (`time`), organizations (`updated_at`) or audits with one comment each
    (ticket events, `created_at`). Returns their ids; re-indexes the fake."""
    account = fake.account
    when = iso(epoch)
    ids: List[int] = []
    if table == "ticket_metric_events":
        tickets: Sequence[Row] = account.tickets
        for i in range(count):
            event = {"id": account.ids["metric_event"].take(), "ticket_id": tickets[i % len(tickets)]["id"],
                     "metric": ("agent_work_time", "requester_wait_time", "reply_time")[i % 3],
                     "instance_id": 1 + i // 3 % 2, "type": ("measure", "pause", "activate")[i % 3], "time": when}
            account.ticket_metric_events.append(event)
            ids.append(event["id"])
    elif table == "organizations":
        template = account.organizations[0]
        for i in range(count):
            oid = account.ids["organization"].take()
            account.organizations.append({
                **template,
                "id": oid,
                "url": f"{account.api}/organizations/{oid}.json",
                "name": f"Bulk import org {i:04d} ✓",
                "external_id": f"BULK-{i:05d}",
                "tags": [],
                "organization_fields": {**template["organization_fields"], "seat_count": i},
                "created_at": when,
                "updated_at": when,
            })
            ids.append(oid)
    elif table == "ticket_audits":
        # One audit with one public comment each, as a bulk import through the API makes them.
        tickets = [t for t in account.tickets if t["status"] != "deleted"]
        for i in range(count):
            ticket = tickets[i % len(tickets)]
            audit_id = account.ids["event"].take()
            via, metadata = account.via_pool["api"], account.metadata_pool[i % len(account.metadata_pool)]
            body = f"Imported note {i} ✓"
            comment = {"id": account.ids["event"].take(), "type": "Comment", "author_id": ticket["requester_id"],
                       "body": body, "html_body": f"<p>{body}</p>", "plain_body": body, "public": True,
                       "attachments": [], "audit_id": audit_id, "via": via, "metadata": metadata, "created_at": when}
            audit = {"id": audit_id, "ticket_id": ticket["id"], "created_at": when, "author_id": ticket["requester_id"],
                     "via": via, "metadata": metadata, "events": [comment]}
            account.audits.append(audit)
            account.audits_by_ticket.setdefault(ticket["id"], []).append(audit)
            ids.append(audit_id)
    else:
        raise ValueError(table)
    fake.refresh()
    return ids
