"""The account's activity and add-on product data: suspended tickets, skips, the activity
stream, audit logs, Help Center (articles, sections, categories, community posts and
topics) and Talk (calls and their legs).

Kept apart from `generator.py` and made on first use from a random stream of its own, so
the rest of the account (and every test pinned to it) is the same with or without it.
`Addons.mutate` changes them the way a day of work would, stamped with the second the
account's own `mutate` used, and returns the export rows whose timestamp moved.
"""

from __future__ import annotations

import uuid
from typing import Dict, List

from .generator import DAY, SUBJECTS, TAG_WORDS, Account, IdCounter, Rng, Row, iso, iso_to_epoch

#: The fake's ticket channels whose messages only a conversation log holds.
MESSAGING_CHANNELS = ("chat",)

SUSPENDED_ID_BASE = 361_000_000_000
SKIP_ID_BASE = 361_100_000_000
ACTIVITY_ID_BASE = 361_200_000_000
AUDIT_LOG_ID_BASE = 361_300_000_000
CATEGORY_ID_BASE = 361_400_000_000
SECTION_ID_BASE = 361_500_000_000
ARTICLE_ID_BASE = 361_600_000_000
TOPIC_ID_BASE = 361_700_000_000
POST_ID_BASE = 361_800_000_000
CALL_ID_BASE = 361_900_000_000
LEG_ID_BASE = 362_000_000_000

SUSPENSION_CAUSES = (
    ("Detected as spam", 0),
    ("Automated response mail", 1),
    ("Received from support address", 3),
    ("Sender domain not on allowlist", 9),
)
SKIP_REASONS = ("Needs a specialist", "Customer language", "I have no idea.", "Waiting on engineering")
AUDIT_ACTIONS = (("create", "Created"), ("update", "Updated"), ("destroy", "Deleted"), ("login", "Signed in"))
AUDIT_SOURCES = ("rule", "user", "ticket_field", "account_setting", "macro")
CATEGORY_NAMES = ("Getting started", "Billing", "Troubleshooting 🛠")
TOPIC_NAMES = ("Feature requests", "Tips and tricks", "Знакомство")
CALL_STATUSES = ("completed", "abandoned_in_queue", "agent_declined", "voicemail")
LEG_TYPES = ("customer", "agent", "external")


def identities_of(account: Account, users: List[Row]) -> List[Row]:
    """The identities of `users`: an e-mail address each, and a phone number for those
    that have one. Derived from the user, so they change when the user does."""
    rows: List[Row] = []
    for user in users:
        uid = user["id"]
        kinds = [("email", user["email"], True, user["verified"])]
        if user.get("phone"):
            kinds.append(("phone_number", user["phone"], False, False))
        for number, (kind, value, primary, verified) in enumerate(kinds, start=1):
            iid = uid * 10 + number
            rows.append({
                "id": iid,
                "url": f"{account.api}/users/{uid}/identities/{iid}.json",
                "user_id": uid,
                "type": kind,
                "value": value,
                "verified": verified,
                "verified_at": user["created_at"] if verified else None,
                "verification_method": "full" if verified else "none",
                "primary": primary,
                "deliverable_state": "deliverable",
                "created_at": user["created_at"],
                "updated_at": user["updated_at"],
            })
    return rows


def all_identities(account: Account) -> List[Row]:
    return identities_of(account, account.users)


def addons_of(account: Account) -> "Addons":
    """The account's add-on data, made once."""
    made = account.__dict__.get("_addons")
    if made is None:
        made = account.__dict__["_addons"] = Addons(account)
    return made


def rows_of(name: str):  # type: ignore[no-untyped-def]
    """The table map's row source for add-on table `name` (an attribute of `Addons`)."""

    def rows(account: Account) -> List[Row]:
        return list(getattr(addons_of(account), name))

    rows.__name__ = name
    return rows


class Addons:
    """Rows of every activity and add-on table of one account, in creation order."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.api = account.api
        self.hc = account.api.replace("/api/v2", "/hc/en-us")
        rng = Rng(f"fake-zendesk-addons:{account.seed}:{len(account.tickets)}")
        self.ids = {
            name: IdCounter(base)
            for name, base in (
                ("suspended", SUSPENDED_ID_BASE), ("skip", SKIP_ID_BASE), ("activity", ACTIVITY_ID_BASE),
                ("audit_log", AUDIT_LOG_ID_BASE), ("category", CATEGORY_ID_BASE), ("section", SECTION_ID_BASE),
                ("article", ARTICLE_ID_BASE), ("topic", TOPIC_ID_BASE), ("post", POST_ID_BASE),
                ("call", CALL_ID_BASE), ("leg", LEG_ID_BASE),
            )
        }
        self.suspended_tickets: List[Row] = []
        self.ticket_skips: List[Row] = []
        self.ticket_activities: List[Row] = []
        self.audit_logs: List[Row] = []
        self.help_center_categories: List[Row] = []
        self.help_center_sections: List[Row] = []
        self.help_center_articles: List[Row] = []
        self.community_topics: List[Row] = []
        self.community_posts: List[Row] = []
        self.talk_calls: List[Row] = []
        self.talk_legs: List[Row] = []
        self.side_conversation_events: List[Row] = []
        self.side_conversations: List[Row] = []
        self.ticket_conversation_logs: List[Row] = []
        self._rng = rng
        end = account.end
        for when in sorted(end - rng.between(1, 30 * DAY) for _ in range(6)):
            self._suspend(rng, when)
        for when in sorted(end - rng.between(1, 90 * DAY) for _ in range(40)):
            self._skip(rng, when)
        for when in sorted(end - rng.between(1, 25 * DAY) for _ in range(60)):
            self._activity(rng, when)
        for when in sorted(end - rng.between(1, 300 * DAY) for _ in range(50)):
            self._audit_log(rng, when)
        base = end - 400 * DAY
        for position, name in enumerate(CATEGORY_NAMES):
            self._category(rng, name, position, base + position * DAY)
        for position in range(6):
            self._section(rng, position, base + (10 + position) * DAY)
        for when in sorted(base + rng.between(20 * DAY, 390 * DAY) for _ in range(25)):
            self._article(rng, when)
        for position, name in enumerate(TOPIC_NAMES):
            self._topic(rng, name, position, base + position * DAY)
        for when in sorted(base + rng.between(20 * DAY, 390 * DAY) for _ in range(20)):
            self._post(rng, when)
        for when in sorted(end - rng.between(1, 200 * DAY) for _ in range(30)):
            self._call(rng, when)
        for when in sorted(end - rng.between(2 * DAY, 200 * DAY) for _ in range(12)):
            self._side_conversation(rng, when)
        for ticket in account.tickets:
            if ticket["via"]["channel"] in MESSAGING_CHANNELS:
                for offset in range(rng.between(2, 4)):
                    self._log_event(rng, ticket, iso_to_epoch(ticket["created_at"]) + 60 * offset)

    # -- rows

    def _ticket(self, ticket_id: int) -> Row:
        return self.account.tickets[ticket_id - 1]

    def _ticket_id(self, rng: Rng) -> int:
        live = [t["id"] for t in self.account.tickets if t["status"] != "deleted"]
        return int(rng.pick(live)) if live else 1

    def _suspend(self, rng: Rng, when: int) -> Row:
        sid = self.ids["suspended"].take()
        author = rng.pick(self.account.end_users)
        cause, cause_id = rng.pick(SUSPENSION_CAUSES)
        row = {
            "id": sid,
            "url": f"{self.api}/suspended_tickets/{sid}.json",
            "attachments": [],
            "author": {"id": author["id"], "name": author["name"], "email": author["email"]},
            "subject": rng.pick(SUBJECTS).format(n=sid % 10_000),
            "content": "Please help, my order never arrived.",
            "cause": cause,
            "cause_id": cause_id,
            "message_id": f"<{sid}@mail.example.com>",
            # a follow-up to a known ticket carries its id
            "ticket_id": self._ticket_id(rng) if rng.random() < 0.5 else None,
            "recipient": f"support@{self.account.subdomain}.zendesk.com",
            "brand_id": 360_950_000_001,
            "error_messages": None,
            "via": {"channel": "email", "source": {"from": {"address": author["email"], "name": author["name"]}, "to": {}, "rel": None}},
            "created_at": iso(when),
            "updated_at": iso(when),
        }
        self.suspended_tickets.append(row)
        return row

    def _skip(self, rng: Rng, when: int) -> Row:
        kid = self.ids["skip"].take()
        row = {
            "id": kid,
            "ticket_id": self._ticket_id(rng),
            "user_id": rng.pick(self.account.staff)["id"],
            "reason": rng.pick(SKIP_REASONS),
            "created_at": iso(when),
            "updated_at": iso(when),
        }
        self.ticket_skips.append(row)
        return row

    def _activity(self, rng: Rng, when: int) -> Row:
        aid = self.ids["activity"].take()
        user, actor = rng.pick(self.account.staff), rng.pick(self.account.staff)
        tid = self._ticket_id(rng)
        verb = rng.pick(("tickets.assignment", "tickets.comment", "tickets.priority_increase"))
        row = {
            "id": aid,
            "url": f"{self.api}/activities/{aid}.json",
            "verb": verb,
            "title": f"{actor['name']} assigned ticket #{tid} to you." if verb == "tickets.assignment"
            else f"{actor['name']} commented on ticket #{tid}.",
            "user_id": user["id"],
            "actor_id": actor["id"],
            "user": {"id": user["id"], "name": user["name"]},
            "actor": {"id": actor["id"], "name": actor["name"]},
            "object": {"ticket": {"id": tid, "subject": f"Ticket {tid}"}},
            "target": {"ticket": {"id": tid, "subject": f"Ticket {tid}"}},
            "created_at": iso(when),
            "updated_at": iso(when),
        }
        self.ticket_activities.append(row)
        return row

    def _audit_log(self, rng: Rng, when: int) -> Row:
        lid = self.ids["audit_log"].take()
        actor = rng.pick(self.account.staff)
        action, label = rng.pick(AUDIT_ACTIONS)
        source = rng.pick(AUDIT_SOURCES)
        row = {
            "id": lid,
            "url": f"{self.api}/audit_logs/{lid}.json",
            "action": action,
            "action_label": label,
            "actor_id": actor["id"],
            "actor_name": actor["name"],
            "source_id": 360_000_000 + rng.below(1000),
            "source_type": source,
            "source_label": f"{source.replace('_', ' ').title()} {rng.below(100)}",
            "change_description": f"{label} {source.replace('_', ' ')}",
            "ip_address": f"192.0.2.{1 + rng.below(250)}",
            "created_at": iso(when),
        }
        self.audit_logs.append(row)
        return row

    def _category(self, rng: Rng, name: str, position: int, when: int) -> Row:
        cid = self.ids["category"].take()
        row = {
            "id": cid,
            "url": f"{self.api}/help_center/en-us/categories/{cid}.json",
            "html_url": f"{self.hc}/categories/{cid}",
            "position": position,
            "created_at": iso(when),
            "updated_at": iso(when + rng.between(0, 30) * DAY),
            "name": name,
            "description": f"All about {name.lower()}",
            "locale": "en-us",
            "source_locale": "en-us",
            "outdated": False,
        }
        self.help_center_categories.append(row)
        return row

    def _section(self, rng: Rng, position: int, when: int) -> Row:
        sid = self.ids["section"].take()
        category = self.help_center_categories[position % len(self.help_center_categories)]
        row = {
            "id": sid,
            "url": f"{self.api}/help_center/en-us/sections/{sid}.json",
            "html_url": f"{self.hc}/sections/{sid}",
            "category_id": category["id"],
            "position": position,
            "sorting": "manual",
            "created_at": iso(when),
            "updated_at": iso(when + rng.between(0, 30) * DAY),
            "name": f"{category['name']}: part {position + 1}",
            "description": "",
            "locale": "en-us",
            "source_locale": "en-us",
            "outdated": False,
            "parent_section_id": None,
            "manageable_by": "managers",
            "user_segment_id": None,
        }
        self.help_center_sections.append(row)
        return row

    def _article(self, rng: Rng, when: int) -> Row:
        aid = self.ids["article"].take()
        title = f"How to {rng.pick(TAG_WORDS).replace('_', ' ')} ({aid % 1000})"
        row = {
            "id": aid,
            "url": f"{self.api}/help_center/en-us/articles/{aid}.json",
            "html_url": f"{self.hc}/articles/{aid}",
            "author_id": rng.pick(self.account.staff)["id"],
            "comments_disabled": rng.random() < 0.3,
            "draft": rng.random() < 0.1,
            "promoted": rng.random() < 0.1,
            "position": 0,
            "vote_sum": rng.between(-2, 20),
            "vote_count": rng.between(0, 30),
            "section_id": rng.pick(self.help_center_sections)["id"],
            "created_at": iso(when),
            "updated_at": iso(when),
            "name": title,
            "title": title,
            "source_locale": "en-us",
            "locale": "en-us",
            "outdated": False,
            "outdated_locales": [],
            "permission_group_id": 360_000_010,
            "user_segment_id": None,
            "label_names": rng.few(TAG_WORDS, 2),
            "content_tag_ids": [],
            "body": f"<p>{title}: step by step.</p>",
        }
        self.help_center_articles.append(row)
        return row

    def _topic(self, rng: Rng, name: str, position: int, when: int) -> Row:
        tid = self.ids["topic"].take()
        row = {
            "id": tid,
            "url": f"{self.api}/community/topics/{tid}.json",
            "html_url": f"{self.hc}/community/topics/{tid}",
            "name": name,
            "description": f"{name} from our users",
            "position": position,
            "follower_count": rng.between(0, 200),
            "community_id": 361_700_000_000,
            "user_segment_id": None,
            "created_at": iso(when),
            "updated_at": iso(when + rng.between(0, 30) * DAY),
        }
        self.community_topics.append(row)
        return row

    def _post(self, rng: Rng, when: int) -> Row:
        pid = self.ids["post"].take()
        row = {
            "id": pid,
            "url": f"{self.api}/community/posts/{pid}.json",
            "html_url": f"{self.hc}/community/posts/{pid}",
            "title": f"Could we get {rng.pick(TAG_WORDS).replace('_', ' ')}? ({pid % 1000})",
            "details": "<p>It would help our team a lot.</p>",
            "author_id": rng.pick(self.account.end_users)["id"],
            "vote_sum": rng.between(0, 40),
            "vote_count": rng.between(0, 40),
            "comment_count": rng.between(0, 10),
            "follower_count": rng.between(0, 10),
            "topic_id": rng.pick(self.community_topics)["id"],
            "pinned": rng.random() < 0.05,
            "featured": rng.random() < 0.1,
            "closed": rng.random() < 0.1,
            "status": rng.pick(("none", "planned", "not_planned", "completed", "answered")),
            "created_at": iso(when),
            "updated_at": iso(when + rng.between(0, 5) * DAY),
        }
        self.community_posts.append(row)
        return row

    def _call(self, rng: Rng, when: int) -> Row:
        cid = self.ids["call"].take()
        agent = rng.pick(self.account.staff)
        customer = rng.pick(self.account.end_users)
        status = rng.pick(CALL_STATUSES)
        talk = 0 if status != "completed" else rng.between(30, 1800)
        wait = rng.between(0, 300)
        phone = rng.pick(self.account.phone_numbers) if self.account.phone_numbers else None
        row = {
            "id": cid,
            "created_at": iso(when),
            "updated_at": iso(when + talk + wait + 60),
            "agent_id": agent["id"] if talk else None,
            "call_group_id": None,
            "call_recording_consent": "always",
            "call_recording_consent_action": None,
            "call_recording_consent_keypress": None,
            "callback": False,
            "callback_source": None,
            "customer_id": customer["id"],
            "customer_requested_voicemail": status == "voicemail",
            "ticket_id": self._ticket_id(rng),
            "direction": rng.pick(("inbound", "outbound")),
            "completion_status": status,
            "consultation_time": 0,
            "duration": talk + wait,
            "talk_time": talk,
            "wait_time": wait,
            "hold_time": rng.between(0, 60) if talk else 0,
            "wrap_up_time": rng.between(0, 120) if talk else 0,
            "time_to_answer": wait if talk else None,
            "exceeded_queue_wait_time": wait > 240,
            "minutes_billed": (talk + wait + 59) // 60,
            "call_charge": f"{(talk + wait) * 0.0022:.4f}",
            "not_recording_time": 0,
            "recording_time": talk,
            "recording_control_interactions": 0,
            "voicemail": status == "voicemail",
            "outside_business_hours": rng.random() < 0.1,
            "overflowed": False,
            "overflowed_to": None,
            "phone_number": phone["number"] if phone else None,
            "quality_issues": ["none"] if rng.random() < 0.9 else ["one_way_audio"],
            "ivr_action": None,
            "ivr_destination_group_name": None,
            "ivr_hops": None,
            "ivr_routed_to": None,
            "ivr_time_spent": None,
            "default_group": True,
        }
        self.talk_calls.append(row)
        for leg_type in ("customer", "agent") if talk else ("customer",):
            self._leg(rng, row, leg_type)
        return row

    def _leg(self, rng: Rng, call: Row, leg_type: str) -> Row:
        lid = self.ids["leg"].take()
        row = {
            "id": lid,
            "call_id": call["id"],
            "type": leg_type,
            "agent_id": call["agent_id"] if leg_type == "agent" else None,
            "user_id": call["customer_id"] if leg_type == "customer" else call["agent_id"],
            "duration": call["talk_time"] if leg_type == "agent" else call["duration"],
            "completion_status": call["completion_status"],
            "hold_time": call["hold_time"] if leg_type == "agent" else 0,
            "wrap_up_time": call["wrap_up_time"] if leg_type == "agent" else 0,
            "talk_time": call["talk_time"],
            "minutes_billed": call["minutes_billed"],
            "call_charge": call["call_charge"] if leg_type == "customer" else "0.0000",
            "available_via": "browser" if leg_type == "agent" else None,
            "conference_from": None,
            "conference_time": None,
            "conference_to": None,
            "consultation_from": None,
            "consultation_time": None,
            "consultation_to": None,
            "forwarded_to": None,
            "transferred_from": None,
            "transferred_to": None,
            "quality_issues": call["quality_issues"],
            "created_at": call["created_at"],
            "updated_at": call["updated_at"],
        }
        self.talk_legs.append(row)
        return row

    def _participant(self, user: Row) -> Row:
        return {"email": user["email"], "name": user["name"], "user_id": user["id"]}

    def _side_event(self, rng: Rng, conversation: Row, kind: str, when: int, author: Row) -> Row:
        event: Row = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "side_conversation_id": conversation["id"],
            "ticket_id": conversation["ticket_id"],
            "url": f"{self.api}/tickets/{conversation['ticket_id']}/side_conversations/{conversation['id']}",
            "type": kind,
            "via": "support",
            "actor": self._participant(author),
            "created_at": iso(when),
        }
        if kind == "update":
            event["updates"] = {"state": "closed"}
        else:
            body = rng.pick(("Could you check the invoice?", "Escalating to the vendor.", "Done on our side ✔"))
            event["message"] = {
                "subject": conversation["subject"],
                "preview_text": body,
                "body": body,
                "html_body": f"<p>{body}</p>",
                "from": self._participant(author),
                "to": [{"email": "partner@vendor.example.com", "name": None, "user_id": None}],
                "via": "support",
            }
        self.side_conversation_events.append(event)
        return event

    def _side_conversation(self, rng: Rng, when: int) -> List[Row]:
        """A side conversation on a ticket: created, answered, sometimes closed. Its row
        in side_conversations is the state its events leave it in."""
        conversation = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "ticket_id": self._ticket_id(rng),
            "subject": f"Question about order {rng.between(1000, 9999)}",
        }
        agent = rng.pick(self.account.staff)
        events = [self._side_event(rng, conversation, "create", when, agent)]
        events.append(self._side_event(rng, conversation, "reply", when + rng.between(60, DAY), agent))
        if rng.random() < 0.5:
            events.append(self._side_event(rng, conversation, "update", when + DAY + 60, agent))
        self.side_conversations.append(self._conversation_row(conversation, events))
        return events

    def _conversation_row(self, conversation: Row, events: List[Row]) -> Row:
        """A side conversation as `/tickets/{id}/side_conversations` lists it."""
        messages = [e for e in events if "message" in e]
        closed = [e for e in events if e["type"] == "update"]
        participants = {}
        for message in (e["message"] for e in messages):
            for person in [message["from"], *message["to"]]:
                participants.setdefault(person["email"], person)
        return {
            "created_at": events[0]["created_at"],
            "external_ids": {},
            "id": conversation["id"],
            "message_added_at": messages[-1]["created_at"],
            "participants": list(participants.values()),
            "preview_text": messages[-1]["message"]["preview_text"],
            "state": "closed" if closed else "open",
            "state_updated_at": (closed or events)[-1 if closed else 0]["created_at"],
            "subject": conversation["subject"],
            "ticket_id": conversation["ticket_id"],
            "updated_at": events[-1]["created_at"],
            "url": f"{self.api}/tickets/{conversation['ticket_id']}/side_conversations/{conversation['id']}",
        }

    def _log_event(self, rng: Rng, ticket: Row, when: int) -> Row:
        """One message of a chat or messaging ticket, as its conversation log lists it,
        with the ticket's id (which the log itself does not repeat)."""
        from_agent = bool(self.ticket_conversation_logs) and rng.random() < 0.5
        author = rng.pick(self.account.staff) if from_agent else {"id": ticket["requester_id"], "name": None}
        text = rng.pick(("Hi, my order has not arrived", "Let me check that for you", "Thanks, that helped ✔"))
        event_id = f"01{uuid.UUID(int=rng.getrandbits(128)).hex[:24].upper()}"
        event = {
            "id": event_id,
            "type": "Messaging::ConversationMessage",
            "reference": f"zen:messaging:message:{event_id}",
            "created_at": iso(when),
            "attachments": [],
            "author": {"type": "agent" if from_agent else "user", "zen:support:user_id": author["id"],
                       "display_name": author["name"]},
            "content": {"type": "text", "text": text},
            "metadata": {"conversation_id": f"conv-{ticket['id']}", "source": ticket["via"]["channel"]},
            "ticket_id": ticket["id"],
        }
        self.ticket_conversation_logs.append(event)
        return event

    # -- changes

    def mutate(self, seed: int, stamp: int) -> Dict[str, List[Row]]:
        """A day of work, stamped `stamp`: a user's phone number (and so its identity)
        removed, a suspended ticket recovered and a new one,
        new skips, activities and audit log entries, an article edited and one written,
        a section renamed and one deleted, a post edited, one deleted and one written, a
        call updated and a new one, a side conversation started and one closed, a chat
        message (the tickets they belong to change too, as Zendesk records them on the
        ticket). Returns the export rows that moved, per table."""
        rng = Rng(f"fake-zendesk-addons-mutate:{self.account.seed}:{seed}")
        when = iso(stamp)
        if self.suspended_tickets:
            self.suspended_tickets.pop(rng.below(len(self.suspended_tickets)))
        self._suspend(rng, stamp)
        for _ in range(2):
            self._skip(rng, stamp)
            self._activity(rng, stamp)
            self._audit_log(rng, stamp)
        edited = rng.pick(self.help_center_articles)
        edited.update(title=f"{edited['title']} (updated)", updated_at=when)
        moved_articles = [edited, self._article(rng, stamp)]
        renamed = self.help_center_sections[0]
        renamed.update(name=f"{renamed['name']} ✔", updated_at=when)
        self.help_center_sections.pop()
        post = rng.pick(self.community_posts)
        post.update(status="completed", vote_sum=post["vote_sum"] + 1, updated_at=when)
        self.community_posts.remove(rng.pick([p for p in self.community_posts if p is not post]))
        self._post(rng, stamp)
        call = rng.pick(self.talk_calls)
        call.update(wrap_up_time=call["wrap_up_time"] + 30, updated_at=when)
        legs = [leg for leg in self.talk_legs if leg["call_id"] == call["id"]]
        for leg in legs:
            leg["updated_at"] = when
        new_call = self._call(rng, stamp)
        new_call["created_at"] = new_call["updated_at"] = when
        new_legs = [leg for leg in self.talk_legs if leg["call_id"] == new_call["id"]]
        for leg in new_legs:
            leg["created_at"] = leg["updated_at"] = when
        side_events = self._side_conversation(rng, stamp)
        for event in side_events:  # the whole conversation happened within the day's second
            event["created_at"] = when
        self.side_conversations[-1] = self._conversation_row(
            {"id": side_events[0]["side_conversation_id"], "ticket_id": side_events[0]["ticket_id"],
             "subject": side_events[0]["message"]["subject"]}, side_events)
        touched = [self._ticket(side_events[0]["ticket_id"])]
        still_open = [c for c in self.side_conversations[:-1] if c["state"] == "open"]
        if still_open:  # an agent closes one
            conversation = rng.pick(still_open)
            closing = self._side_event(rng, conversation, "update", stamp, rng.pick(self.account.staff))
            side_events.append(closing)
            conversation.update(state="closed", state_updated_at=when, updated_at=when)
            touched.append(self._ticket(conversation["ticket_id"]))
        chats = [t for t in self.account.tickets if t["via"]["channel"] in MESSAGING_CHANNELS and t["status"] != "deleted"]
        if chats:  # a chat goes on
            chat = rng.pick(chats)
            self._log_event(rng, chat, stamp)
            touched.append(chat)
        for ticket in touched:  # Zendesk records the change on the ticket: the export resends it
            ticket["updated_at"], ticket["generated_timestamp"] = when, stamp
            metric_set = self.account.metric_sets.get(ticket["id"])
            if metric_set is not None:
                metric_set["updated_at"] = when
        # a user's phone number is removed: the phone identity goes with it
        unphoned = rng.pick([u for u in self.account.end_users if u.get("phone")] or self.account.end_users)
        unphoned.update(phone=None, updated_at=when)
        return {
            "users": [unphoned],
            "help_center_articles": moved_articles,
            "talk_calls": [call, new_call],
            "talk_legs": legs + new_legs,
            "side_conversation_events": side_events,
            "tickets": touched,
        }
