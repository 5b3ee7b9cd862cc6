"""The one declarative map of role -> actions, and the markers views use to declare what they need.

Enforcement is central (``auth.enforcement``): every request's endpoint must be marked ``public`` or
``requires(action)``; an unmarked endpoint is refused, so a forgotten decorator fails closed.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import lazy_gettext as _l

ROLES = ("admin", "officer", "evaluator", "partner")
ROLE_LABELS = {
    "admin": _l("Administrator"),
    "officer": _l("Communication officer"),
    "evaluator": _l("Evaluator"),
    "partner": _l("Partner organisation"),
}

ACTIONS: dict[str, str] = {
    "dashboard.view": "See the dashboard",
    "account.edit": "Change one's own language and password",
    "contacts.view": "List and open contacts (scoped; pseudonyms for evaluators; partners list their registrations)",
    "contacts.create": "Register a contact with their consent",
    "contacts.edit": "Edit a contact, add numbers, record consent or opt-out",
    "contacts.reveal": "Reveal a contact's phone number (audited)",
    "contacts.import": "Import contacts from CSV",
    "contacts.erase": "Erase a contact on request",
    "segments.view": "See segments and their counts",
    "segments.manage": "Create and edit segments",
    "partners.view": "See partner organisations (partners: their own only)",
    "partners.manage": "Manage partner organisations",
    "users.manage": "Manage users and roles",
    "audit.view": "Read the audit log",
    "privacy.manage": "Edit retention periods and run the purge",
    "settings.manage": "Enable content languages; edit objectives, content variables, prices and official domains",
    "campaigns.view": "See campaigns, their content, checks and cost estimates",
    "campaigns.edit": "Create and edit campaigns, submit them for review, preview and send tests",
    "campaigns.approve": "Approve campaigns another person edited last (four eyes)",
    "campaigns.launch": "Launch, pause, resume, complete and archive campaigns",
    "api_tokens.manage": "Create and revoke API tokens",
    "senders.manage": "Manage senders (numbers, Messaging Services, countries, rates)",
    "inbox.view": "Read people's messages in the inbox (scoped like contacts; marks them read)",
    "inbox.reply": "Answer people from the inbox and mark conversations as handled",
    "simulator.phone": "Use the Twilio simulator's test phones: read their conversations, reply as the phone",
    "simulator.manage": "Change the Twilio simulator's fault injection (latency, errors, timeouts)",
    "keywords.manage": "Add, switch off and remove the keywords people send (STOP, HELP, language…)",
    "conversations.view": "List conversations: pseudonym, country, language, counts (no message text)",
    "conversations.read": "Read the texts of a conversation: what the person wrote and what we sent",
    "partner_reports.submit": "Submit activity reports for one's own organisation and correct them",
    "partner_reports.view": "Read partner activity reports (partners: their own organisation's only)",
    "protection.view": "Read the protection concerns partners report, and their notices",
    "feedback.view": "See the feedback queue (sensitive items: administrators and the assigned person only)",
    "feedback.code": "Code feedback items one by one or in bulk, assign them, record how the loop is closed",
    "codebook.manage": "Edit feedback topics and the keyword rules that suggest codes",
    "reports.view": "See engagement, poll, feedback, partner-reach and cost reports (counts under 5 hidden)",
    "reports.export": "Export reports and coded feedback as CSV or XLSX (audited)",
}

_ALL = frozenset(ACTIONS)

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": _ALL,
    "officer": frozenset(
        {
            "dashboard.view", "account.edit",
            "contacts.view", "contacts.create", "contacts.edit", "contacts.reveal",
            "contacts.import", "contacts.erase",
            "segments.view", "segments.manage",
            "partners.view",
            "campaigns.view", "campaigns.edit", "campaigns.approve", "campaigns.launch",
            "inbox.view", "inbox.reply",
            "simulator.phone",
            "conversations.view", "conversations.read",
            "partner_reports.view", "feedback.view", "feedback.code", "reports.view", "reports.export",
        }
    ),
    "evaluator": frozenset({"dashboard.view", "account.edit", "contacts.view", "segments.view",
                            "campaigns.view", "conversations.view",
                            "partner_reports.view", "feedback.view", "feedback.code", "reports.view",
                            "reports.export"}),
    "partner": frozenset({"dashboard.view", "account.edit", "contacts.view", "contacts.create", "partners.view",
                          "partner_reports.submit", "partner_reports.view"}),
}

# Roles that may ever see a phone number (masked by default, revealed one at a time).
ROLES_SEEING_NUMBERS = frozenset({"admin", "officer"})

assert all(p <= _ALL for p in PERMISSIONS.values()), "unknown action in PERMISSIONS"


def can(role: str | None, action: str) -> bool:
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return role is not None and action in PERMISSIONS.get(role, frozenset())


def requires(action: str) -> Callable:
    """Declare the action a view needs. Checked before the view runs, for every method."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")

    def mark(view: Callable) -> Callable:
        view.c4d_action = action
        return view

    return mark


def public(view: Callable) -> Callable:
    """Declare a view that needs no login (login page, health check, webhooks with their own check)."""
    view.c4d_public = True
    return view


def authenticated(view: Callable) -> Callable:
    """Declare a view any logged-in user may use (logout)."""
    view.c4d_authenticated = True
    return view
