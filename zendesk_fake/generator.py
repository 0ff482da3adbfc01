"""Deterministic fake Zendesk account data, and the changes a live account goes through.

`generate_account(seed, tickets)` builds every table of a Zendesk Support account as the
JSON dicts the API returns. The same (seed, tickets, day) always gives the same data:
timestamps are offsets from midnight UTC one day before the real date, so the data set
ends about a day before "now" and shifts only when the date changes (pass `now` to pin it).

`Account.mutate` and `Account.add_custom_field` change the account the way agents and
admins would, stamping every change with a second that is later than anything stamped
before and at least a minute old, so incremental exports show the change at once and a
client resuming from its last cursor sees exactly the changed rows.

Generation is O(N) and shares immutable sub-objects (via, metadata, empty lists) between
rows to keep 200k-ticket accounts within a few GB; nothing ever mutates a nested object
in place, changes always assign new values.
"""

from __future__ import annotations

import contextlib
import gc
import html
import json
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

Row = Dict[str, Any]

DAY = 86_400

# Id spaces: every kind has its own range so an id never means two things.
USER_ID_BASE = 360_000_000_000
ORG_ID_BASE = 360_100_000_000
GROUP_ID_BASE = 360_200_000_000
MEMBERSHIP_ID_BASE = 360_300_000_000
MACRO_ID_BASE = 360_400_000_000
TICKET_FIELD_ID_BASE = 360_500_000_000
USER_FIELD_ID_BASE = 360_510_000_000
ORG_FIELD_ID_BASE = 360_520_000_000
FIELD_OPTION_ID_BASE = 360_530_000_000
TICKET_FORM_ID_BASE = 360_600_000_000
RATING_ID_BASE = 360_700_000_000
SLA_ID_BASE = 360_800_000_000
PHONE_ID_BASE = 360_900_000_000
BRAND_ID = 360_950_000_001
CUSTOM_STATUS_ID_BASE = 360_960_000_000
METRIC_SET_ID_BASE = 10_000_000
EVENT_ID_BASE = 20_000_000_000  # audits and their events (comments included) share one space, as in Zendesk
METRIC_EVENT_ID_BASE = 30_000_000_000
ATTACHMENT_ID_BASE = 40_000_000_000

#: How far before real time `mutate()` stamps its first change: exports must show it at once
#: (older than a minute) and successive calls need room for strictly increasing seconds.
MUTATION_LEAD_SECONDS = 3_600
EXPORT_MIN_AGE_SECONDS = 61

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
STATUS_WEIGHTS = (15, 15, 10, 5, 25, 30)
OPEN_STATUSES = ("open", "pending", "hold")
PRIORITIES = (None, "low", "normal", "high", "urgent")
TICKET_TYPES = (None, "question", "incident", "problem", "task")
CHANNELS = ("web", "email", "api", "mobile", "chat", "voice")

#: The fixed tables and the words the data is made of live in data/*.json.
DATA_DIR = Path(__file__).resolve().parent / "data"


def load_data(name: str) -> Any:
    """One data file of the fake (`data/<name>.json`)."""
    with open(DATA_DIR / f"{name}.json", encoding="utf-8") as handle:
        return json.load(handle)


_WORDS: Dict[str, List[Any]] = load_data("words")
FIRST_NAMES = tuple(_WORDS["first_names"])
LAST_NAMES = tuple(_WORDS["last_names"])
COMPANY_WORDS = tuple(_WORDS["company_words"])
COMPANY_SUFFIXES = tuple(_WORDS["company_suffixes"])
SUBJECTS = tuple(_WORDS["subjects"])
COMMENT_LINES = tuple(_WORDS["comment_lines"])
TEXT_VALUES = tuple(_WORDS["text_values"])
TEXTAREA_VALUES = tuple(_WORDS["textarea_values"])
TAG_WORDS = tuple(_WORDS["tag_words"])
GROUP_NAMES = tuple(_WORDS["group_names"])
MACRO_TITLES = tuple(_WORDS["macro_titles"])
USER_AGENTS = tuple(_WORDS["user_agents"])
LOCATIONS = tuple((place, lat, lon) for place, lat, lon in _WORDS["locations"])
TIME_ZONES = tuple(_WORDS["time_zones"])
LOCALES = tuple(_WORDS["locales"])

TICKET_FIELD_TYPES = (
    "text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "tagger", "multiselect", "lookup",
)
USER_FIELD_TYPES = ("text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown", "lookup")
FIELD_TYPES_BY_KIND = {"ticket": TICKET_FIELD_TYPES, "user": USER_FIELD_TYPES, "organization": USER_FIELD_TYPES}
#: Titles of the system and custom ticket fields, and (key, type, title) of the user and
#: organization fields every account starts with.
FIELDS: Dict[str, Any] = load_data("fields")
SYSTEM_TICKET_FIELDS = tuple(FIELDS["system_ticket_fields"])
ACCOUNT_CODE_PATTERN = r"^[A-Z]{3}-\d{4}$"


_DAY_PREFIXES: Dict[int, str] = {}
_TWO_DIGITS = tuple(f"{i:02d}" for i in range(60))


def iso(epoch: int) -> str:
    """Zendesk's body timestamp format (UTC, second precision). Called millions of times,
    so the date part is cached per day and the time assembled from a lookup table
    (three times faster than strftime)."""
    day, second = divmod(int(epoch), DAY)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        prefix = _DAY_PREFIXES[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * DAY))
    two = _TWO_DIGITS
    return prefix + two[second // 3600] + ":" + two[second // 60 % 60] + ":" + two[second % 60] + "Z"


def iso_to_epoch(value: str) -> int:
    """Inverse of `iso` (for ordering rows whose only timestamp is an ISO string)."""
    return int(datetime.fromisoformat(value).timestamp())


def _day(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _midnight_iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(epoch))


class Rng(random.Random):
    """`random.Random` with cheap pickers: generation makes millions of draws, and
    `randrange`/`sample` cost several times more than one `random()` call."""

    def below(self, n: int) -> int:
        return int(self.random() * n)

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def few(self, seq: Sequence[Any], k: int) -> List[Any]:
        """k distinct items of a sequence much longer than k."""
        chosen: List[Any] = []
        while len(chosen) < k:
            item = seq[int(self.random() * len(seq))]
            if item not in chosen:
                chosen.append(item)
        return chosen


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Building millions of acyclic dicts triggers pointless full GC passes; skip them meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class IdCounter:
    """Hands out increasing ids in one id space; mutations continue where generation stopped."""

    def __init__(self, base: int) -> None:
        self.next = base + 1

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value


class Account:
    """All tables of one fake Zendesk account, plus the operations that change them.

    Rows are the exact dicts the API serves. Tickets are stored without `metric_set` and
    without the duplicated `fields` list: the server adds both when it serves a ticket,
    so the stored ticket is also the ground-truth row.
    """

    def __init__(self, seed: int, n_tickets: int, now: float, subdomain: str) -> None:
        self.seed = seed
        self.subdomain = subdomain
        self.api = f"https://{subdomain}.zendesk.com/api/v2"
        self.end = int(now) // DAY * DAY - DAY
        self.start = self.end - 730 * DAY
        #: The latest second stamped anywhere in the data; every change stamps a later one.
        self.last_stamp = self.end
        self.ids = {
            "event": IdCounter(EVENT_ID_BASE),
            "metric_event": IdCounter(METRIC_EVENT_ID_BASE),
            "attachment": IdCounter(ATTACHMENT_ID_BASE),
            "user": IdCounter(USER_ID_BASE),
            "organization": IdCounter(ORG_ID_BASE),
            "group": IdCounter(GROUP_ID_BASE),
            "membership": IdCounter(MEMBERSHIP_ID_BASE),
            "macro": IdCounter(MACRO_ID_BASE),
            "ticket_field": IdCounter(TICKET_FIELD_ID_BASE),
            "user_field": IdCounter(USER_FIELD_ID_BASE),
            "organization_field": IdCounter(ORG_FIELD_ID_BASE),
            "option": IdCounter(FIELD_OPTION_ID_BASE),
            "ticket_form": IdCounter(TICKET_FORM_ID_BASE),
            "rating": IdCounter(RATING_ID_BASE),
            "sla": IdCounter(SLA_ID_BASE),
            "phone": IdCounter(PHONE_ID_BASE),
        }
        self.tickets: List[Row] = []
        self.metric_sets: Dict[int, Row] = {}
        self.audits: List[Row] = []
        self.audits_by_ticket: Dict[int, List[Row]] = {}
        self.ticket_metric_events: List[Row] = []
        self.users: List[Row] = []
        self.organizations: List[Row] = []
        self.groups: List[Row] = []
        self.group_memberships: List[Row] = []
        self.macros: List[Row] = []
        self.ticket_fields: List[Row] = []
        self.user_fields: List[Row] = []
        self.organization_fields: List[Row] = []
        self.ticket_forms: List[Row] = []
        self.satisfaction_ratings: List[Row] = []
        self.sla_policies: List[Row] = []
        self.phone_numbers: List[Row] = []
        self.tags: List[Row] = []
        #: Fixed list tables read from data files (`data_table`), by table name.
        self.data_tables: Dict[str, List[Row]] = {}
        self._build(Rng(f"fake-zendesk:{seed}:{n_tickets}"), n_tickets)

    # ------------------------------------------------------------------ generation

    def _build(self, rng: Rng, n: int) -> None:
        self._pools(rng)
        self._build_fields(rng)
        self._build_organizations(rng, max(5, n // 20))
        self._build_users(rng, max(20, n // 2))
        self._build_groups(rng)
        self._build_memberships(rng)
        self._build_small_tables(rng)
        self._build_tickets(rng, n)
        self.recount_tags()

    def _pools(self, rng: Rng) -> None:
        """Shared, never-mutated sub-objects: real accounts repeat these values constantly."""
        self.via_pool: Dict[str, Row] = {}
        for channel in CHANNELS:
            if channel == "email":
                source: Row = {
                    "from": {"address": "customer@example.com", "name": "Customer"},
                    "to": {"address": f"support@{self.subdomain}.zendesk.com", "name": "Support"},
                    "rel": None,
                }
            else:
                source = {"from": {}, "to": {}, "rel": None}
            self.via_pool[channel] = {"channel": channel, "source": source}
        self.rule_via = {"channel": "rule", "source": {"from": {"id": 360_000_001, "title": "Notify requester", "deleted": False}, "to": {}, "rel": "trigger"}}
        self.metadata_pool: List[Row] = []
        for i in range(60):
            location, lat, lon = LOCATIONS[i % len(LOCATIONS)]
            system = {
                "client": rng.pick(USER_AGENTS),
                "ip_address": f"203.0.{113 + i // 30}.{(i * 7) % 250 + 1}",
                "location": location,
                "latitude": lat,
                "longitude": lon,
            }
            self.metadata_pool.append({"system": system, "custom": {}})
        self.empty_list: List[Any] = []

    def _option(self, name: str, value: str, default: bool = False) -> Row:
        return {"id": self.ids["option"].take(), "name": name, "raw_name": name, "value": value, "default": default}

    def _options_for(self, key: str, count: int) -> List[Row]:
        labels = ("Bronze", "Silver", "Gold", "Платина", "ماسي", "Enterprise 🚀")
        return [self._option(labels[i % len(labels)], f"{key}_{i + 1}") for i in range(count)]

    def _ticket_field(self, ftype: str, title: str, position: int, created: int, system: bool) -> Row:
        fid = self.ids["ticket_field"].take()
        field: Row = {
            "id": fid,
            "url": f"{self.api}/ticket_fields/{fid}.json",
            "type": ftype,
            "title": title,
            "raw_title": title,
            "description": f"{title} of the ticket" if system else f"Custom {ftype} field",
            "raw_description": f"{title} of the ticket" if system else f"Custom {ftype} field",
            "agent_description": None if system else f"Agents fill in the {title.lower()}",
            "position": position,
            "active": True,
            "required": ftype == "subject",
            "collapsed_for_agents": False,
            "regexp_for_validation": ACCOUNT_CODE_PATTERN if ftype == "regexp" else None,
            "title_in_portal": title,
            "raw_title_in_portal": title,
            "visible_in_portal": system,
            "editable_in_portal": ftype in ("subject", "description"),
            "required_in_portal": ftype in ("subject", "description"),
            "tag": f"cf_checkbox_{fid % 10_000}" if ftype == "checkbox" else None,
            "removable": not system,
            "sub_type_id": 0,
            "created_at": iso(created),
            "updated_at": iso(created),
        }
        if ftype in ("tagger", "multiselect"):
            field["custom_field_options"] = self._options_for(f"{ftype}_{fid % 10_000}", 5)
        if ftype == "status":
            field["system_field_options"] = [{"name": s.title(), "value": s} for s in STATUSES[:5]]
        elif ftype == "priority":
            field["system_field_options"] = [{"name": p.title(), "value": p} for p in PRIORITIES[1:]]
        elif ftype == "tickettype":
            field["system_field_options"] = [{"name": t.title(), "value": t} for t in TICKET_TYPES[1:]]
        if ftype == "lookup":
            field["relationship_target_type"] = "zen:user"
            field["relationship_filter"] = {"all": [{"field": "role", "operator": "is", "value": "end-user"}], "any": []}
        return field

    def _record_field(self, kind: str, key: str, ftype: str, title: str, position: int, created: int) -> Row:
        id_kind = "user_field" if kind == "user" else "organization_field"
        fid = self.ids[id_kind].take()
        field: Row = {
            "id": fid,
            "url": f"{self.api}/{id_kind}s/{fid}.json",
            "key": key,
            "type": ftype,
            "title": title,
            "raw_title": title,
            "description": f"{title} ({kind})",
            "raw_description": f"{title} ({kind})",
            "position": position,
            "active": True,
            "system": False,
            "regexp_for_validation": ACCOUNT_CODE_PATTERN if ftype == "regexp" else None,
            "tag": f"{key}_checked" if ftype == "checkbox" else None,
            "created_at": iso(created),
            "updated_at": iso(created),
        }
        if ftype == "dropdown":
            field["custom_field_options"] = self._options_for(key, 4)
        if ftype == "lookup":
            field["relationship_target_type"] = "zen:user"
        return field

    def _build_fields(self, rng: Rng) -> None:
        created = self.start - 200 * DAY
        titles = FIELDS["system_ticket_fields"]
        for position, ftype in enumerate(SYSTEM_TICKET_FIELDS):
            self.ticket_fields.append(self._ticket_field(ftype, titles[ftype], position, created, system=True))
        custom_titles = FIELDS["custom_ticket_fields"]
        for offset, ftype in enumerate(TICKET_FIELD_TYPES):
            when = created + rng.between(0, 300 * DAY)
            self.ticket_fields.append(self._ticket_field(ftype, custom_titles[ftype], 100 + offset, when, system=False))
        for position, (key, ftype, title) in enumerate(FIELDS["user_fields"]):
            self.user_fields.append(self._record_field("user", key, ftype, title, position, created + position * DAY))
        for position, (key, ftype, title) in enumerate(FIELDS["organization_fields"]):
            self.organization_fields.append(self._record_field("organization", key, ftype, title, position, created + position * DAY))

    @property
    def custom_ticket_fields(self) -> List[Row]:
        return [f for f in self.ticket_fields if f["type"] in TICKET_FIELD_TYPES]

    def _custom_value(self, rng: Rng, field: Row, when: int, for_ticket: bool) -> Any:
        """One realistic value for a custom field, in the shape Zendesk returns for its type."""
        ftype = field["type"]
        if ftype == "checkbox":
            return rng.random() < 0.3
        if rng.random() < 0.3:
            return None
        if ftype == "text":
            return rng.pick(TEXT_VALUES)
        if ftype == "textarea":
            return rng.pick(TEXTAREA_VALUES)
        if ftype == "regexp":
            return "".join(rng.pick("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(3)) + f"-{rng.between(0, 9999):04d}"
        if ftype == "date":
            epoch = when + rng.between(-30, 60) * DAY
            return _day(epoch) if for_ticket else _midnight_iso(epoch)
        if ftype == "integer":
            number = rng.between(0, 5000)
            return str(number) if for_ticket else number
        if ftype == "decimal":
            amount = rng.between(0, 99_999) / 100
            return f"{amount:.2f}" if for_ticket else amount
        if ftype in ("tagger", "dropdown"):
            options = field["custom_field_options"]
            return rng.pick(options)["value"]
        if ftype == "multiselect":
            options = field["custom_field_options"]
            return [o["value"] for o in rng.few(options, rng.between(1, 3))]
        if ftype == "lookup":
            return rng.pick(self.end_user_ids)
        raise ValueError(f"no value generator for field type {ftype!r}")

    def _set_value(self, rng: Rng, field: Row, when: int, for_ticket: bool) -> Any:
        """A value that is actually set (not null, checkbox ticked): what an edit writes."""
        if field["type"] == "checkbox":
            return True
        value = None
        while value is None:
            value = self._custom_value(rng, field, when, for_ticket)
        return value

    def _build_organizations(self, rng: Rng, count: int) -> None:
        for i in range(count):
            oid = self.ids["organization"].take()
            created = rng.between(self.start - 365 * DAY, self.end - 30 * DAY)
            updated = rng.between(created, self.end)
            name = f"{COMPANY_WORDS[i % len(COMPANY_WORDS)]} {COMPANY_SUFFIXES[(i // len(COMPANY_WORDS)) % len(COMPANY_SUFFIXES)]} {i + 1}"
            slug = f"{COMPANY_WORDS[i % len(COMPANY_WORDS)].lower()}{i + 1}"
            self.organizations.append({
                "id": oid,
                "url": f"{self.api}/organizations/{oid}.json",
                "name": name,
                "external_id": f"ORG-{i + 1:05d}" if rng.random() < 0.6 else None,
                "domain_names": [f"{slug}.example.com"] if rng.random() < 0.8 else [],
                "details": "Key account 🌟" if rng.random() < 0.2 else None,
                "notes": "Prefers e-mail / предпочитает почту" if rng.random() < 0.2 else None,
                "group_id": None,
                "shared_tickets": rng.random() < 0.3,
                "shared_comments": rng.random() < 0.2,
                "tags": rng.few(TAG_WORDS, rng.between(0, 2)),
                "organization_fields": {f["key"]: self._custom_value(rng, f, created, False) for f in self.organization_fields},
                "created_at": iso(created),
                "updated_at": iso(updated),
                "deleted_at": None,
            })

    def _user(self, rng: Rng, i: int, role: str, created: int, updated: int) -> Row:
        uid = self.ids["user"].take()
        first = rng.pick(FIRST_NAMES)
        last = rng.pick(LAST_NAMES)
        email = "admin@fakeacme.com" if i == 0 else f"user{i + 1}@{'fakeacme.com' if role != 'end-user' else 'customer.example.com'}"
        org_id = None
        if role == "end-user" and rng.random() < 0.7:
            org_id = rng.pick(self.organizations)["id"]
        photo = None
        if rng.random() < 0.2:
            pid = self.ids["attachment"].take()
            photo = {
                "id": pid,
                "url": f"{self.api}/attachments/{pid}.json",
                "file_name": "profile.png",
                "content_url": f"https://{self.subdomain}.zendesk.com/system/photos/{pid}/profile.png",
                "content_type": "image/png",
                "size": rng.between(2000, 90_000),
                "inline": False,
                "thumbnails": self.empty_list,
            }
        return {
            "id": uid,
            "url": f"{self.api}/users/{uid}.json",
            "name": "Alex Admin" if i == 0 else f"{first} {last}",
            "email": email,
            "phone": f"+45 {rng.between(20_000_000, 99_999_999)}" if rng.random() < 0.4 else None,
            "shared_phone_number": None,
            "role": role,
            "role_type": None if role == "end-user" else (4 if role == "admin" else 0),
            "custom_role_id": None if role == "end-user" else 360_000_000 + (1 if role == "admin" else 2),
            "default_group_id": None,
            "organization_id": org_id,
            "active": True,
            "verified": rng.random() < 0.9,
            "suspended": False,
            "shared": False,
            "shared_agent": False,
            "restricted_agent": role == "agent" and rng.random() < 0.2,
            "moderator": role != "end-user",
            "only_private_comments": False,
            "report_csv": role != "end-user",
            "ticket_restriction": None if role == "admin" else ("assigned" if role == "agent" else "requested"),
            "two_factor_auth_enabled": role != "end-user" and rng.random() < 0.5,
            "locale": rng.pick(LOCALES),
            "locale_id": 1 + rng.below(20),
            "time_zone": rng.pick(TIME_ZONES),
            "iana_time_zone": "Europe/Copenhagen",
            "photo": photo,
            "tags": rng.few(TAG_WORDS, rng.between(0, 2)),
            "user_fields": {f["key"]: self._custom_value(rng, f, created, False) for f in self.user_fields},
            "external_id": f"EXT-{i + 1:06d}" if rng.random() < 0.5 else None,
            "alias": "Support team 🎧" if role != "end-user" and rng.random() < 0.3 else None,
            "details": None,
            "notes": "VIP — handle with care" if rng.random() < 0.05 else None,
            "signature": f"Best regards,\n{first}" if role != "end-user" else None,
            "last_login_at": iso(rng.between(max(created, updated - 10 * DAY), updated)) if role != "end-user" or rng.random() < 0.3 else None,
            "created_at": iso(created),
            "updated_at": iso(updated),
        }

    def _build_users(self, rng: Rng, count: int) -> None:
        n_admins = 3
        n_agents = max(4, round(count * 0.02))
        for i in range(count):
            role = "admin" if i < n_admins else ("agent" if i < n_admins + n_agents else "end-user")
            if role == "end-user":
                created = rng.between(self.start - 365 * DAY, self.end - DAY)
            else:
                created = rng.between(self.start - 400 * DAY, self.start - 100 * DAY)
            updated = rng.between(created, self.end)
            if i == 0:
                created, updated = self.start - 400 * DAY, self.start - 399 * DAY
            self.users.append(self._user(rng, i, role, created, updated))
        self.staff = [u for u in self.users if u["role"] != "end-user"]
        self.end_users = [u for u in self.users if u["role"] == "end-user"]
        #: Lookup fields point at end-users (`relationship_target_type: zen:user`).
        self.end_user_ids = [u["id"] for u in self.end_users]
        for user in rng.sample(self.end_users, max(1, len(self.end_users) // 100)):
            user["active"] = False

    def _group(self, name: str, created: int, updated: int, deleted: bool) -> Row:
        gid = self.ids["group"].take()
        return {
            "id": gid,
            "url": f"{self.api}/groups/{gid}.json",
            "name": name,
            "description": f"{name} team",
            "default": gid == GROUP_ID_BASE + 1,
            "deleted": deleted,
            "is_public": True,
            "created_at": iso(created),
            "updated_at": iso(updated),
        }

    def _build_groups(self, rng: Rng) -> None:
        for i, name in enumerate(GROUP_NAMES):
            created = self.start - 300 * DAY + i * 7 * DAY
            updated = rng.between(created, self.end)
            self.groups.append(self._group(name, created, updated, deleted=(i == len(GROUP_NAMES) - 1)))
        self.live_groups = [g for g in self.groups if not g["deleted"]]

    def _build_memberships(self, rng: Rng) -> None:
        for user in self.staff:
            chosen = rng.few(self.live_groups, 1 if rng.random() < 0.5 else 2)
            for position, group in enumerate(chosen):
                mid = self.ids["membership"].take()
                created = max(iso_to_epoch(user["created_at"]), iso_to_epoch(group["created_at"])) + rng.between(0, 30) * DAY
                self.group_memberships.append({
                    "id": mid,
                    "url": f"{self.api}/group_memberships/{mid}.json",
                    "user_id": user["id"],
                    "group_id": group["id"],
                    "default": position == 0,
                    "created_at": iso(created),
                    "updated_at": iso(created),
                })
            user["default_group_id"] = chosen[0]["id"]

    def _build_small_tables(self, rng: Rng) -> None:
        base = self.start - 100 * DAY
        for i in range(30):
            mid = self.ids["macro"].take()
            title = f"{MACRO_TITLES[i % len(MACRO_TITLES)]}" + ("" if i < len(MACRO_TITLES) else f" ({i // len(MACRO_TITLES) + 1})")
            created = base + rng.between(0, 500) * DAY
            group = rng.pick(self.live_groups)
            self.macros.append({
                "id": mid,
                "url": f"{self.api}/macros/{mid}.json",
                "title": title,
                "raw_title": title,
                "description": "Applies the standard reply" if rng.random() < 0.5 else None,
                "active": rng.random() < 0.85,
                "default": False,
                "position": i + 1,
                "restriction": {"type": "Group", "id": group["id"], "ids": [group["id"]]} if rng.random() < 0.3 else None,
                "actions": [
                    {"field": "status", "value": rng.pick(("open", "pending", "solved"))},
                    {"field": "comment_value_html", "value": f"<p>{html.escape(COMMENT_LINES[i % len(COMMENT_LINES)])}</p>"},
                    {"field": "current_tags", "value": " ".join(rng.few(TAG_WORDS, 2))},
                ],
                "created_at": iso(created),
                "updated_at": iso(rng.between(created, self.end)),
            })
        self._build_fixed_tables(rng, base)

    def _build_fixed_tables(self, rng: Rng, base: int) -> None:
        """Forms, SLA policies and phone numbers from data/*.json, given this account's ids,
        urls, groups and times."""
        field_ids = [f["id"] for f in self.ticket_fields]
        for position, form in enumerate(load_data("ticket_forms")):
            fid = self.ids["ticket_form"].take()
            created = base + position * 20 * DAY
            ranges = form.pop("field_ranges")
            self.ticket_forms.append({
                "id": fid,
                "url": f"{self.api}/ticket_forms/{fid}.json",
                "position": position + 1,
                **form,
                "ticket_field_ids": [i for start, end in ranges for i in field_ids[start:end]],
                "created_at": iso(created),
                "updated_at": iso(rng.between(created, self.end)),
            })
        for position, policy in enumerate(load_data("sla_policies")):
            sid = self.ids["sla"].take()
            created = base + position * 30 * DAY
            self.sla_policies.append({
                "id": sid,
                "url": f"{self.api}/slas/policies/{sid}.json",
                **policy,
                "created_at": iso(created),
                "updated_at": iso(rng.between(created, self.end)),
            })
        for i, phone in enumerate(load_data("phone_numbers")):
            pid = self.ids["phone"].take()
            group_id = self.live_groups[i]["id"]
            self.phone_numbers.append({
                "id": pid,
                **phone,
                "sms_group_id": self.live_groups[0]["id"] if phone["sms_enabled"] else None,
                "default_group_id": group_id,
                "group_ids": [group_id],
                "brand_id": BRAND_ID,
                "token": f"tok{pid % 100_000:05d}",
                "created_at": iso(base + i * 40 * DAY),
            })

    # -- tickets, audits, metrics

    def _comment(self, rng: Rng, audit_id: int, author_id: int, body: str, public: bool,
                 via: Row, metadata: Row, created: str) -> Row:
        """A Comment event of an audit (a ticket_comments row once its ticket_id is added)."""
        attachments = self.empty_list
        if rng.random() < 0.1:
            aid = self.ids["attachment"].take()
            image = rng.random() < 0.6
            name = f"screenshot_{aid % 1000}.png" if image else f"log_{aid % 1000}.txt"
            url = f"https://{self.subdomain}.zendesk.com/attachments/token/{aid}/?name={name}"
            thumbnails = self.empty_list
            if image:
                tid = self.ids["attachment"].take()
                thumbnails = [{"id": tid, "file_name": f"thumb_{name}", "content_url": url + "&thumb=1",
                               "content_type": "image/png", "size": 3_000, "inline": False, "thumbnails": self.empty_list}]
            attachments = [{"id": aid, "file_name": name, "content_url": url, "mapped_content_url": url,
                            "content_type": "image/png" if image else "text/plain", "size": rng.between(500, 2_000_000),
                            "inline": image and rng.random() < 0.3, "deleted": False, "thumbnails": thumbnails}]
        return {
            "id": self.ids["event"].take(),
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "html_body": '<div class="zd-comment" dir="auto">' + html.escape(body).replace("\n", "<br>") + "</div>",
            "plain_body": body,
            "public": public,
            "attachments": attachments,
            "audit_id": audit_id,
            "via": via,
            "metadata": metadata,
            "created_at": created,
        }

    def _field_event(self, kind: str, field_name: str, value: Any, previous: Any = None) -> Row:
        event: Row = {"id": self.ids["event"].take(), "type": kind, "field_name": field_name, "value": value}
        if kind == "Change":
            event["previous_value"] = previous
        return event

    def _audit(self, ticket_id: int, created: int, author_id: int, via: Row, metadata: Row) -> Row:
        audit = {
            "id": self.ids["event"].take(),
            "ticket_id": ticket_id,
            "created_at": iso(created),
            "author_id": author_id,
            "via": via,
            "metadata": metadata,
            "events": [],
        }
        self.audits.append(audit)
        self.audits_by_ticket.setdefault(ticket_id, []).append(audit)
        return audit

    def _body(self, rng: Rng) -> str:
        lines = rng.few(COMMENT_LINES, rng.between(1, 3))
        return "\n\n".join(lines)

    def _build_tickets(self, rng: Rng, n: int) -> None:
        fields = self.custom_ticket_fields
        forms = [f["id"] for f in self.ticket_forms]
        statuses = rng.choices(STATUSES, STATUS_WEIGHTS, k=n)
        n_deleted = max(1, n // 200)
        deleted_ids = set(rng.sample(range(1, n + 1), n_deleted)) if n else set()
        bulk_seconds = [self.end - rng.between(1, 20 * DAY) for _ in range(3)]
        problem_ids: List[int] = []
        for tid in range(1, n + 1):
            created = rng.between(self.start, self.end - 2 * 3600)
            life = min(self.end - created, int(rng.expovariate(1 / (5 * DAY))))
            n_audits = 1 + rng.between(0, 6)
            times = [created] + sorted(created + rng.between(1, max(1, life)) for _ in range(n_audits - 1))
            updated = times[-1]
            generated = updated + (rng.between(1, 600) if rng.random() < 0.3 else 0)
            if rng.random() < 0.02:
                bulk = bulk_seconds[rng.below(3)]
                generated = max(generated, bulk)
            generated = min(generated, self.end)
            final_status = statuses[tid - 1]
            ticket = self._new_ticket(rng, tid, created, updated, generated, final_status, fields, forms, problem_ids)
            self._ticket_history(rng, ticket, times, final_status)
            if tid in deleted_ids:
                ticket["status"] = "deleted"
                self.metric_sets.pop(tid, None)
            self.tickets.append(ticket)
        incident_targets = {t["problem_id"] for t in self.tickets if t["problem_id"]}
        for tid in incident_targets:
            self.tickets[tid - 1]["has_incidents"] = True

    def _new_ticket(self, rng: Rng, tid: int, created: int, updated: int, generated: int,
                    status: str, fields: Sequence[Row], forms: Sequence[int], problem_ids: List[int]) -> Row:
        requester = rng.pick(self.end_users)
        assignee = None if status == "new" else rng.pick(self.staff)
        group_id = None
        if assignee is not None:
            group_id = assignee["default_group_id"]
        elif rng.random() < 0.5:
            group_id = rng.pick(self.live_groups)["id"]
        channel = rng.pick(CHANNELS) if rng.random() < 0.6 else "email"
        ticket_type = rng.pick(TICKET_TYPES)
        problem_id = None
        if ticket_type == "problem":
            problem_ids.append(tid)
        elif ticket_type == "incident" and problem_ids and rng.random() < 0.5:
            problem_id = rng.pick(problem_ids)
        subject = rng.pick(SUBJECTS).format(n=1000 + tid)
        custom_fields = [{"id": f["id"], "value": self._custom_value(rng, f, created, True)} for f in fields]
        tags = rng.few(TAG_WORDS, rng.between(0, 4))
        for entry, field in zip(custom_fields, fields):
            if field["type"] == "tagger" and entry["value"]:
                tags.append(entry["value"])
            elif field["type"] == "multiselect" and entry["value"]:
                tags.extend(entry["value"])
        staff_ids = [u["id"] for u in rng.few(self.staff, min(2, len(self.staff)))]
        collaborators = [rng.pick(self.end_users)["id"]] if rng.random() < 0.15 else []
        return {
            "url": f"{self.api}/tickets/{tid}.json",
            "id": tid,
            "external_id": f"ext-{tid}" if rng.random() < 0.1 else None,
            "via": self.via_pool[channel],
            "created_at": iso(created),
            "updated_at": iso(updated),
            "generated_timestamp": generated,
            "type": ticket_type,
            "subject": subject,
            "raw_subject": subject,
            "description": "",
            "priority": rng.pick(PRIORITIES),
            "status": status,
            "custom_status_id": CUSTOM_STATUS_ID_BASE + STATUSES.index(status) + 1,
            "recipient": f"support@{self.subdomain}.zendesk.com" if channel == "email" else None,
            "requester_id": requester["id"],
            "submitter_id": requester["id"] if channel in ("web", "email", "mobile") else staff_ids[0],
            "assignee_id": assignee["id"] if assignee else None,
            "organization_id": requester["organization_id"],
            "group_id": group_id,
            "collaborator_ids": collaborators,
            "follower_ids": staff_ids[1:] if rng.random() < 0.2 else [],
            "email_cc_ids": collaborators,
            "followup_ids": [],
            "forum_topic_id": None,
            "problem_id": problem_id,
            "has_incidents": False,
            "is_public": rng.random() < 0.95,
            "due_at": iso(created + rng.between(1, 14) * DAY) if ticket_type == "task" else None,
            "tags": tags,
            "custom_fields": custom_fields,
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "ticket_form_id": rng.pick(forms),
            "brand_id": BRAND_ID,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": channel == "chat",
        }

    def _ticket_history(self, rng: Rng, ticket: Row, times: List[int], final_status: str) -> None:
        """Audits, comments, rating, metric set and metric events that explain the ticket's state."""
        tid = ticket["id"]
        requester_id = ticket["requester_id"]
        agent_id = ticket["assignee_id"] or rng.pick(self.staff)["id"]
        via = ticket["via"]
        metadata = rng.pick(self.metadata_pool)
        status = final_status if len(times) == 1 else ("open" if ticket["assignee_id"] else "new")
        create = self._audit(tid, times[0], ticket["submitter_id"], via, metadata)
        description = self._body(rng)
        ticket["description"] = description
        create["events"] = [
            self._comment(rng, create["id"], ticket["submitter_id"], description, True, via, metadata, create["created_at"]),
            self._field_event("Create", "subject", ticket["subject"]),
            self._field_event("Create", "status", status),
            self._field_event("Create", "priority", ticket["priority"]),
            self._field_event("Create", "tags", list(ticket["tags"])),
        ]
        if ticket["assignee_id"]:
            create["events"].append(self._field_event("Create", "assignee_id", str(ticket["assignee_id"])))
        if rng.random() < 0.5:
            create["events"].append({"id": self.ids["event"].take(), "type": "Notification", "via": self.rule_via,
                                     "subject": "[{{ticket.account}}] Re: {{ticket.title}}",
                                     "body": "Your request ({{ticket.id}}) has been received.", "recipients": [requester_id]})
        comment_times: List[int] = [times[0]]
        replies = 0
        for position, when in enumerate(times[1:], start=1):
            by_agent = position % 2 == 1
            author = agent_id if by_agent else requester_id
            audit_metadata = rng.pick(self.metadata_pool)
            audit_via = self.via_pool["web"] if by_agent else via
            audit = self._audit(tid, when, author, audit_via, audit_metadata)
            events: List[Row] = []
            if rng.random() < 0.5:
                public = not by_agent or rng.random() < 0.8
                events.append(self._comment(rng, audit["id"], author, self._body(rng), public, audit_via, audit_metadata, audit["created_at"]))
                comment_times.append(when)
                if by_agent and public:
                    replies += 1
            last = position == len(times) - 1
            new_status = final_status if last else OPEN_STATUSES[rng.below(3)]
            if new_status != status:
                events.append(self._field_event("Change", "status", new_status, status))
                status = new_status
            if rng.random() < 0.1:
                events.append({"id": self.ids["event"].take(), "type": "Cc", "recipients": [rng.pick(self.staff)["id"]]})
            if not events:
                events.append(self._field_event("Change", "priority", ticket["priority"], None))
            audit["events"] = events
        updated = times[-1]
        if final_status in ("solved", "closed") and len(times) > 1 and rng.random() < 0.42:
            self._rate(rng, ticket, self.audits_by_ticket[tid][-1], updated)
        self.metric_sets[tid] = self._metric_set(rng, ticket, times, comment_times, replies)
        self._metric_events(rng, ticket, times)

    def _rate(self, rng: Rng, ticket: Row, audit: Row, when: int) -> None:
        rid = self.ids["rating"].take()
        score = rng.choices(("good", "bad", "offered"), (6, 2, 2))[0]
        comment = rng.pick(("Great service! 👍", "Очень медленно", "شكرا جزيلا", None)) if score != "offered" else None
        reason, reason_id = ("No reason provided", 0) if score != "bad" else rng.pick(
            (("The issue took too long to resolve", 5), ("The issue was not resolved", 6), ("The agent's knowledge is unsatisfactory", 7)))
        rating = {
            "id": rid,
            "url": f"{self.api}/satisfaction_ratings/{rid}.json",
            "assignee_id": ticket["assignee_id"],
            "group_id": ticket["group_id"],
            "requester_id": ticket["requester_id"],
            "ticket_id": ticket["id"],
            "score": score,
            "comment": comment,
            "reason": reason,
            "reason_id": reason_id,
            "created_at": iso(when),
            "updated_at": iso(when),
        }
        self.satisfaction_ratings.append(rating)
        ticket["satisfaction_rating"] = {"id": rid, "score": score, "comment": comment, "reason": reason, "reason_id": reason_id}
        audit["events"].append({"id": self.ids["event"].take(), "type": "SatisfactionRating", "score": score,
                                "assignee_id": ticket["assignee_id"], "body": comment or ""})

    def _metric_set(self, rng: Rng, ticket: Row, times: List[int], comment_times: List[int], replies: int) -> Row:
        tid = ticket["id"]
        created, updated = times[0], times[-1]
        assigned = times[1] if len(times) > 1 and ticket["assignee_id"] else (created if ticket["assignee_id"] else None)
        solved = updated if ticket["status"] in ("solved", "closed") else None

        def minutes(seconds: Optional[int]) -> Row:
            if seconds is None:
                return {"calendar": None, "business": None}
            calendar = seconds // 60
            return {"calendar": calendar, "business": calendar * 2 // 5}

        first_reply = times[1] - created if len(times) > 1 else None
        return {
            "id": METRIC_SET_ID_BASE + tid,
            "url": f"{self.api}/ticket_metrics/{METRIC_SET_ID_BASE + tid}.json",
            "ticket_id": tid,
            "created_at": iso(created),
            "updated_at": iso(updated),
            "group_stations": 1 + (len(times) > 3),
            "assignee_stations": int(ticket["assignee_id"] is not None) + (len(times) > 5),
            "reopens": int(len(times) > 4),
            "replies": replies,
            "assignee_updated_at": iso(updated) if ticket["assignee_id"] else None,
            "requester_updated_at": iso(created),
            "status_updated_at": iso(updated),
            "initially_assigned_at": iso(assigned) if assigned else None,
            "assigned_at": iso(assigned) if assigned else None,
            "solved_at": iso(solved) if solved else None,
            "latest_comment_added_at": iso(comment_times[-1]),
            "reply_time_in_minutes": minutes(first_reply),
            "first_resolution_time_in_minutes": minutes(solved - created if solved else None),
            "full_resolution_time_in_minutes": minutes(solved - created if solved else None),
            "agent_wait_time_in_minutes": minutes(rng.between(0, max(0, updated - created)) if len(times) > 2 else None),
            "requester_wait_time_in_minutes": minutes(rng.between(0, max(0, updated - created)) if len(times) > 1 else None),
            "on_hold_time_in_minutes": minutes(rng.between(0, 3600) if rng.random() < 0.1 else 0),
        }

    def _metric_event(self, ticket_id: int, metric: str, event_type: str, when: int, **extra: Any) -> Row:
        event = {"id": self.ids["metric_event"].take(), "ticket_id": ticket_id, "metric": metric,
                 "instance_id": 1, "type": event_type, "time": iso(when)}
        event.update(extra)
        self.ticket_metric_events.append(event)
        return event

    def _metric_events(self, rng: Rng, ticket: Row, times: List[int]) -> None:
        """About six metric events per ticket: activations at creation, then pauses, SLA and fulfilments."""
        tid = ticket["id"]
        created, updated = times[0], times[-1]
        later = created + (times[1] - created if len(times) > 1 else 0)
        self._metric_event(tid, "reply_time", "activate", created)
        self._metric_event(tid, "agent_work_time", "activate", created)
        self._metric_event(tid, "requester_wait_time", "activate", created)
        if rng.random() < 0.6:
            policy = rng.pick(self.sla_policies)
            self._metric_event(tid, "reply_time", "apply_sla", created, sla={
                "target": 60, "business_hours": False,
                "policy": {"id": policy["id"], "title": policy["title"], "description": policy["description"]}})
        if rng.random() < 0.5:
            self._metric_event(tid, "pausable_update_time", "update_status", later, status={"calendar": rng.between(1, 600), "business": rng.between(0, 300)})
        if rng.random() < 0.15:
            extra = {"deleted": True} if rng.random() < 0.3 else {}
            self._metric_event(tid, "reply_time", "breach", later, **extra)
        self._metric_event(tid, "reply_time", "fulfill", later)
        if rng.random() < 0.5:
            self._metric_event(tid, "requester_wait_time", "pause", later)
        if ticket["status"] in ("solved", "closed"):
            self._metric_event(tid, "agent_work_time", "fulfill", updated)
            self._metric_event(tid, "resolution_time", "measure", updated)

    def recount_tags(self) -> None:
        """The tags list: every tag on a live ticket with its use count, most used first."""
        counts: Dict[str, int] = {}
        for ticket in self.tickets:
            if ticket["status"] != "deleted":
                for tag in ticket["tags"]:
                    counts[tag] = counts.get(tag, 0) + 1
        self.tags = [{"name": name, "count": count} for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    # ------------------------------------------------------------------ changes

    def next_stamp(self, now: Optional[float] = None) -> int:
        """A second later than anything stamped so far and still old enough for exports."""
        current = int(time.time() if now is None else now)
        stamp = max(self.last_stamp + 1, current - MUTATION_LEAD_SECONDS)
        if stamp > current - EXPORT_MIN_AGE_SECONDS:
            raise RuntimeError(
                "too many changes within the last hour: the next change would be stamped less than"
                f" {EXPORT_MIN_AGE_SECONDS} s ago and exports would withhold it"
            )
        self.last_stamp = stamp
        return stamp

    def data_table(self, name: str) -> List[Row]:
        """A fixed list table (`data/<name>.json`), its urls under this account's API; read
        once, then kept with the changes `edit_data_tables` made."""
        rows = self.data_tables.get(name)
        if rows is None:
            text = json.dumps(load_data(name), ensure_ascii=False).replace("{api}", self.api)
            rows = self.data_tables[name] = json.loads(text)
        return rows

    def edit_data_tables(self, names: Sequence[str]) -> Dict[str, Row]:
        """An admin's pass over the account configuration, stamped with one new second:
        in each table the first row is renamed or, nameless, its `default` flips (and its `updated_at` moves, where it has
        one) and the last one deleted. Returns, per table, the ids `changed` and `deleted`."""
        stamp = iso(self.next_stamp())
        summary: Dict[str, Row] = {}
        for name in names:
            rows = self.data_table(name)
            deleted = [rows.pop()["id"]] if len(rows) > 1 else []
            first = rows[0]
            label = next((key for key in ("name", "title", "agent_label", "value") if isinstance(first.get(key), str)), None)
            # A row without a name (a membership) changes its `default` flag instead.
            rows[0] = {**first, label: f"{first[label]} (edited)"} if label else {**first, "default": not first["default"]}
            if "updated_at" in first:
                rows[0]["updated_at"] = stamp
            summary[name] = {"changed": [first["id"]], "deleted": deleted}
        return summary

    def _touch_ticket(self, ticket: Row, stamp: int) -> None:
        ticket["updated_at"] = iso(stamp)
        ticket["generated_timestamp"] = stamp

    def mutate(self, seed: int, fraction: float) -> Row:
        """One batch of everyday changes, all stamped with one new second. See `FakeZendesk.mutate`."""
        rng = Rng(f"fake-zendesk-mutate:{self.seed}:{seed}")
        stamp = self.next_stamp()
        when = iso(stamp)
        first_audit = len(self.audits)
        first_metric_event = len(self.ticket_metric_events)
        live = [t for t in self.tickets if t["status"] != "deleted"]
        k = max(1, round(fraction * len(live)))
        # Closed tickets are final in Zendesk: agents cannot edit them any more.
        candidates = [t for t in live if t["status"] != "closed"] or live
        chosen = rng.sample(candidates, min(len(candidates), k + 1))
        to_update = chosen[:k]
        to_delete = chosen[k] if len(chosen) > k else None
        fields = self.custom_ticket_fields
        for ticket in to_update:
            self._update_ticket(rng, ticket, stamp, fields)
        summary_deleted: List[int] = []
        if to_delete is not None:
            to_delete["status"] = "deleted"
            self._touch_ticket(to_delete, stamp)
            self.metric_sets.pop(to_delete["id"], None)
            summary_deleted.append(to_delete["id"])
        new_ticket = self._create_ticket_now(rng, stamp, fields)

        users_updated = []
        active_end_users = [u for u in self.end_users if u["active"]]
        for user in rng.sample(self.users, max(1, min(len(self.users), round(fraction * len(self.users))))):
            user["phone"] = f"+45 {rng.between(20_000_000, 99_999_999)}"
            user["tags"] = sorted(set(user["tags"]) | {rng.pick(TAG_WORDS)})
            user["user_fields"] = {**user["user_fields"], "seats": rng.between(1, 500)}
            user["updated_at"] = when
            users_updated.append(user["id"])
        users_deleted = []
        removable = [u for u in active_end_users if u["id"] not in users_updated] or active_end_users
        if removable:
            gone = rng.pick(removable)
            gone["active"] = False
            gone["updated_at"] = when
            users_deleted.append(gone["id"])

        orgs_updated = []
        for org in rng.sample(self.organizations, max(1, round(fraction * len(self.organizations)))):
            org["notes"] = f"Reviewed {when[:10]} ✔"
            org["tags"] = sorted(set(org["tags"]) | {rng.pick(TAG_WORDS)})
            org["organization_fields"] = {**org["organization_fields"], "seat_count": rng.between(1, 5000)}
            org["updated_at"] = when
            orgs_updated.append(org["id"])

        memberships_removed = []
        if self.group_memberships:
            removed = self.group_memberships.pop(rng.below(len(self.group_memberships)))
            memberships_removed.append(removed["id"])
        group = self._group(f"New team {len(self.groups) + 1}", stamp, stamp, deleted=False)
        self.groups.append(group)
        self.live_groups.append(group)
        self.recount_tags()

        new_audits = self.audits[first_audit:]
        return {
            "stamp": stamp,
            "tickets_updated": sorted(t["id"] for t in to_update),
            "tickets_deleted": summary_deleted,
            "tickets_created": [new_ticket["id"]],
            "audits_created": [a["id"] for a in new_audits],
            "comments_created": [e["id"] for a in new_audits for e in a["events"] if e["type"] == "Comment"],
            "ticket_metric_events_created": [e["id"] for e in self.ticket_metric_events[first_metric_event:]],
            "users_updated": sorted(users_updated),
            "users_deleted": users_deleted,
            "organizations_updated": sorted(orgs_updated),
            "groups_created": [group["id"]],
            "group_memberships_removed": memberships_removed,
        }

    def _update_ticket(self, rng: Rng, ticket: Row, stamp: int, fields: Sequence[Row]) -> None:
        """An agent works the ticket: status, priority, tags and custom fields change, comments are added."""
        tid = ticket["id"]
        agent = rng.pick(self.staff)
        metadata = rng.pick(self.metadata_pool)
        via = self.via_pool["web"]
        audit = self._audit(tid, stamp, agent["id"], via, metadata)
        body = self._body(rng)
        events: List[Row] = [self._comment(rng, audit["id"], agent["id"], body, True, via, metadata, audit["created_at"])]
        new_status = rng.pick([s for s in ("open", "pending", "hold", "solved") if s != ticket["status"]])
        events.append(self._field_event("Change", "status", new_status, ticket["status"]))
        ticket["status"] = new_status
        ticket["custom_status_id"] = CUSTOM_STATUS_ID_BASE + STATUSES.index(new_status) + 1
        new_priority = rng.pick([p for p in PRIORITIES[1:] if p != ticket["priority"]])
        events.append(self._field_event("Change", "priority", new_priority, ticket["priority"]))
        ticket["priority"] = new_priority
        new_tags = sorted(set(ticket["tags"]) | {rng.pick(TAG_WORDS)})
        events.append(self._field_event("Change", "tags", new_tags, list(ticket["tags"])))
        ticket["tags"] = new_tags
        custom = [dict(entry) for entry in ticket["custom_fields"]]
        for index in rng.sample(range(len(fields)), 2):
            field = fields[index]
            old_value = custom[index]["value"]
            value = (not old_value) if field["type"] == "checkbox" else self._set_value(rng, field, stamp, True)
            events.append(self._field_event("Change", str(field["id"]), value, old_value))
            custom[index]["value"] = value
        ticket["custom_fields"] = custom
        if ticket["assignee_id"] is None:
            events.append(self._field_event("Change", "assignee_id", str(agent["id"]), None))
            ticket["assignee_id"] = agent["id"]
        audit["events"] = events
        if rng.random() < 0.5:
            reply = self._audit(tid, stamp, ticket["requester_id"], ticket["via"], metadata)
            reply["events"] = [self._comment(rng, reply["id"], ticket["requester_id"], self._body(rng), True, ticket["via"], metadata, reply["created_at"])]
        self._touch_ticket(ticket, stamp)
        old = self.metric_sets.get(tid)
        if old is not None:
            self.metric_sets[tid] = {
                **old,
                "updated_at": iso(stamp),
                "replies": old["replies"] + 1,
                "status_updated_at": iso(stamp),
                "latest_comment_added_at": iso(stamp),
                "assignee_updated_at": iso(stamp),
                "solved_at": iso(stamp) if new_status == "solved" else old["solved_at"],
            }
        self._metric_event(tid, "pausable_update_time", "update_status", stamp, status={"calendar": rng.between(1, 600), "business": rng.between(0, 300)})
        if new_status == "solved":
            self._metric_event(tid, "agent_work_time", "fulfill", stamp)

    def _create_ticket_now(self, rng: Rng, stamp: int, fields: Sequence[Row]) -> Row:
        tid = len(self.tickets) + 1
        forms = [f["id"] for f in self.ticket_forms]
        ticket = self._new_ticket(rng, tid, stamp, stamp, stamp, "new", fields, forms, [])
        self._ticket_history(rng, ticket, [stamp], "new")
        self.tickets.append(ticket)
        return ticket

    def add_custom_field(self, kind: str, field_type: str) -> Tuple[Row, Dict[str, List[int]]]:
        """A new field definition; about a tenth of the live records get a value (and a new timestamp).

        Every record gains the field: tickets get `{id, value: None}` in `custom_fields`, users
        and organizations get `key: None`, as Zendesk shows a new field on every record. Only
        the records given a value change their timestamp, so a replica that never re-reads
        the others holds them without the field, which is the same as null.
        Returns the definition and the ids whose timestamps moved, per table.
        """
        if kind not in FIELD_TYPES_BY_KIND:
            raise ValueError(f"kind must be one of {sorted(FIELD_TYPES_BY_KIND)}, not {kind!r}")
        if field_type not in FIELD_TYPES_BY_KIND[kind]:
            raise ValueError(f"{kind} fields can be of type {', '.join(FIELD_TYPES_BY_KIND[kind])}; not {field_type!r}")
        defined = len(self.ticket_fields) + len(self.user_fields) + len(self.organization_fields)
        rng = Rng(f"fake-zendesk-field:{self.seed}:{kind}:{field_type}:{defined}")
        stamp = self.next_stamp()
        when = iso(stamp)
        if kind == "ticket":
            count = sum(1 for f in self.ticket_fields if f["type"] == field_type) + 1
            field = self._ticket_field(field_type, f"New {field_type} field {count}", 200 + len(self.ticket_fields), stamp, system=False)
            self.ticket_fields.append(field)
            default_form = self.ticket_forms[0]
            default_form["ticket_field_ids"] = default_form["ticket_field_ids"] + [field["id"]]
            default_form["updated_at"] = when
            live = [t for t in self.tickets if t["status"] != "deleted"]
            chosen = {t["id"] for t in rng.sample(live, max(1, len(live) // 10))}
            for ticket in self.tickets:
                ticket["custom_fields"] = ticket["custom_fields"] + [{"id": field["id"], "value": None}]
            first_audit = len(self.audits)
            for tid in sorted(chosen):
                ticket = self.tickets[tid - 1]
                value = self._set_value(rng, field, stamp, True)
                ticket["custom_fields"][-1] = {"id": field["id"], "value": value}
                if field_type in ("tagger", "multiselect"):
                    ticket["tags"] = ticket["tags"] + ([value] if isinstance(value, str) else list(value))
                audit = self._audit(tid, stamp, self.users[0]["id"], self.via_pool["api"], self.metadata_pool[0])
                audit["events"] = [self._field_event("Change", str(field["id"]), value, None)]
                self._touch_ticket(ticket, stamp)
            self.recount_tags()
            return field, {"tickets": sorted(chosen), "audits": [a["id"] for a in self.audits[first_audit:]]}
        records = self.users if kind == "user" else self.organizations
        definitions = self.user_fields if kind == "user" else self.organization_fields
        key = f"new_{field_type}_{len(definitions) + 1}"
        field = self._record_field(kind, key, field_type, f"New {field_type} field {len(definitions) + 1}", len(definitions), stamp)
        definitions.append(field)
        attribute = "user_fields" if kind == "user" else "organization_fields"
        chosen = {r["id"] for r in rng.sample(records, max(1, len(records) // 10))}
        for record in records:
            value = None
            if record["id"] in chosen:
                value = self._set_value(rng, field, stamp, False)
                record["updated_at"] = when
            record[attribute] = {**record[attribute], key: value}
        return field, {"users" if kind == "user" else "organizations": sorted(chosen)}


def generate_account(seed: int = 1, tickets: int = 200, now: Optional[float] = None,
                     subdomain: str = "fakeacme") -> Account:
    """Build a whole account; deterministic for (seed, tickets) within one UTC day (or for `now`)."""
    if tickets < 0:
        raise ValueError("tickets must be >= 0")
    with paused_gc():
        return Account(seed, tickets, time.time() if now is None else now, subdomain)
