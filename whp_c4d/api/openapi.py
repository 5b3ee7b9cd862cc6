"""The OpenAPI 3 document, built from the same marshmallow schemas the endpoints use."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from ..audience.schemas import ContactCreateSchema, ContactOutSchema

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                                             "fields": {"type": "object"}}}


def build_spec() -> dict:
    spec = APISpec(title="WHP C4D API", version="1", openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": "Contacts are shown by pseudonym; numbers are masked, and only for "
                                        "roles allowed to see them."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("ContactOut", schema=ContactOutSchema)
    spec.components.schema("ContactCreate", schema=ContactCreateSchema(languages=[]))
    spec.components.schema("Error", _ERROR)
    ref = {"$ref": "#/components/schemas/Error"}
    errors = {"401": {"description": "No valid token", "content": {"application/json": {"schema": ref}}},
              "403": {"description": "Role not allowed", "content": {"application/json": {"schema": ref}}}}
    registration = {"type": "object", "properties": {
        "reference": {"type": "string", "example": "R-7K3M9QXA"}, "status": {"type": "string", "enum": ["received"]},
        "country": {"type": "string"}, "language": {"type": "string"},
        "channels": {"type": "array", "items": {"type": "string"}}, "created_at": {"type": "string",
                                                                               "format": "date-time"}}}
    spec.path(path="/api/v1/contacts", operations={
        "get": {"summary": "List contacts", "security": [{"bearer": []}],
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
                    {"name": "after", "in": "query", "schema": {"type": "integer"}},
                    {"name": "country", "in": "query", "schema": {"type": "string"}},
                    {"name": "language", "in": "query", "schema": {"type": "string"}},
                    {"name": "channel", "in": "query", "schema": {"type": "string"}},
                    {"name": "tag", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "A page of contacts", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/ContactOut"}},
                        "next": {"type": "string", "nullable": True}}}}}}, **errors}},
        "post": {"summary": "Register a contact with their consent", "security": [{"bearer": []}],
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/ContactCreate"}}}},
                 "responses": {"201": {"description": "Created", "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/ContactOut"}}}},
                     "202": {"description": (
                         "Partners: the registration was received. The same answer whether the number was new, "
                         "already known or erased, so that nobody can test who is in the programme"),
                         "content": {"application/json": {"schema": registration}}},
                     "400": {"description": "Invalid", "content": {"application/json": {"schema": ref}}},
                     "409": {"description": "Staff only: number taken or erased",
                             "content": {"application/json": {"schema": ref}}},
                     **errors}},
    })
    spec.path(path="/api/v1/registrations", operations={
        "get": {"summary": "Partners: their organisation's registrations, newest first", "security": [{"bearer": []}],
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}}],
                "responses": {"200": {"description": "Registrations", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "data": {"type": "array", "items": registration}}}}}}, **errors}},
    })
    spec.path(path="/api/v1/contacts/{contact_id}", operations={
        "get": {"summary": "One contact", "security": [{"bearer": []}],
                "parameters": [{"name": "contact_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "The contact", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ContactOut"}}}},
                    "404": {"description": "Not found or not visible to you"}, **errors}},
    })
    _campaign_paths(spec, errors, ref)
    _inbound_paths(spec, errors, ref)
    from .partner_reports import _partner_report_paths  # here: that module imports .views, which imports us
    _partner_report_paths(spec, errors, ref)
    from .reports import _report_paths  # here, like the line above
    _report_paths(spec, errors, ref)
    return spec.to_dict()


def _campaign_paths(spec: APISpec, errors: dict, ref: dict) -> None:
    from ..campaigns.schemas import CampaignSchema, SchemaContext, StepSchema

    ctx = SchemaContext(languages=[], objectives=[], variables=[])
    spec.components.schema("Step", schema=StepSchema(context=ctx))
    spec.components.schema("Campaign", schema=CampaignSchema(context=ctx))
    campaign = {"$ref": "#/components/schemas/Campaign"}
    body = {"required": True, "content": {"application/json": {"schema": campaign}}}
    one = {"200": {"description": "The campaign, its status and the problems found by the checks before approval "
                                  "(steps follow the Step schema; see docs/campaign-files.md)",
                   "content": {"application/json": {"schema": campaign}}}}
    path_id = [{"name": "campaign_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    invalid = {"400": {"description": "Invalid: fields maps each path (steps[2].content.ht.sms) to a message",
                       "content": {"application/json": {"schema": ref}}}}
    conflict = {"409": {"description": "Refused by the workflow", "content": {"application/json": {"schema": ref}}}}
    spec.path(path="/api/v1/campaigns", operations={
        "get": {"summary": "List campaigns", "security": [{"bearer": []}],
                "parameters": [{"name": "status", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Campaign summaries"}, **errors}},
        "post": {"summary": "Create a draft campaign (same shape as content files)", "security": [{"bearer": []}],
                 "requestBody": body, "responses": {"201": one["200"], **invalid, **conflict, **errors}},
    })
    spec.path(path="/api/v1/campaigns/{campaign_id}", operations={
        "get": {"summary": "One campaign", "security": [{"bearer": []}], "parameters": path_id,
                "responses": {**one, "404": {"description": "Not found"}, **errors}},
        "put": {"summary": "Replace a campaign's content; an approved campaign returns to review",
                "security": [{"bearer": []}], "parameters": path_id, "requestBody": body,
                "responses": {**one, **invalid, **conflict, **errors}},
    })
    spec.path(path="/api/v1/campaigns/{campaign_id}/transitions", operations={
        "post": {"summary": "Move a campaign through its workflow (four eyes for approve)",
                 "security": [{"bearer": []}], "parameters": path_id,
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["action"], "properties": {
                         "action": {"type": "string", "enum": ["submit", "request_changes", "approve", "activate",
                                                               "pause", "resume", "complete", "archive"]},
                         "comment": {"type": "string"}}}}}},
                 "responses": {**one, "400": {"description": "Unknown action"}, **conflict, **errors}},
    })


def _inbound_paths(spec: APISpec, errors: dict, ref: dict) -> None:
    """Conversations (no text in the list), one conversation's messages, a poll's results."""
    from ..inbound.models import KINDS

    bearer = [{"bearer": []}]
    invalid = {"400": {"description": "Invalid filter: fields maps each parameter to a message",
                       "content": {"application/json": {"schema": ref}}}}
    count = {"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["<5"]}],
             "description": "People; \"<5\" for 1 to 4 when the caller does not operate campaigns (evaluators)"}
    spec.components.schema("Conversation", {"type": "object", "properties": {
        "contact_id": {"type": "integer"},
        "pseudonym": {"type": "string", "example": "C-7K2M9Q", "description": "Never the phone number"},
        "country": {"type": "string", "example": "GT"}, "language": {"type": "string", "example": "es"},
        "last_message_at": {"type": "string", "format": "date-time"},
        "messages": {"type": "integer", "description": "Messages the person sent us"},
        "unread": {"type": "integer", "description": "Of those, not yet opened in the inbox"},
        "kinds": {"type": "array", "items": {"type": "string", "enum": list(KINDS)},
                  "description": "What we made of their messages"},
        "flagged": {"type": "boolean", "description": "A message flagged for review (e.g. a possible opt-out "
                                                      "inside a sentence) is not handled yet"}}})
    spec.components.schema("ConversationMessage", {"type": "object", "properties": {
        "direction": {"type": "string", "enum": ["in", "out"]}, "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time", "description": "Received (in) or sent (out)"},
        "channel": {"type": "string", "enum": ["sms", "whatsapp"]}, "text": {"type": "string"},
        "media": {"type": "integer", "description": "in: number of media attached"},
        "kind": {"type": "string", "nullable": True, "description": "in: " + ", ".join(KINDS)},
        "action": {"type": "string", "nullable": True}, "flag": {"type": "string", "nullable": True},
        "read": {"type": "boolean"}, "handled": {"type": "boolean"},
        "purpose": {"type": "string", "description": "out: campaigns, polls or reply (the consent it relied on)"},
        "status": {"type": "string", "description": "out: delivery status"},
        "campaign_id": {"type": "integer", "nullable": True}, "step_id": {"type": "integer", "nullable": True}}})
    breakdown = {"type": "object", "additionalProperties": count}
    counts = {"count": count, "by_language": breakdown, "by_country": breakdown, "by_channel": breakdown}
    spec.components.schema("PollResults", {"type": "object", "properties": {
        "step_id": {"type": "integer"}, "step_key": {"type": "string"}, "campaign_id": {"type": "integer"},
        "question": {"type": "string", "description": "The step's text in the campaign's base language"},
        "base_language": {"type": "string"}, "occurrence": {"type": "string", "nullable": True},
        "occurrences": {"type": "array", "items": {"type": "string"}},
        "small_cells_suppressed": {"type": "boolean"}, "total": count, "answered": count,
        "choices": {"type": "array", "items": {"type": "object", "properties": {
            "number": {"type": "integer"}, "label": {"type": "string"}, **counts}}},
        "not_understood": {"type": "object", "properties": counts,
                           "description": "Answers not understood after one re-ask, kept as feedback"}}})
    page = {"limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}}}
    spec.path(path="/api/v1/conversations", operations={"get": {
        "summary": "Conversations: one per person who wrote to us, most recent first (no message text)",
        "security": bearer, "parameters": [
            page["limit"],
            {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "Cursor from next"},
            {"name": "country", "in": "query", "schema": {"type": "string"}},
            {"name": "language", "in": "query", "schema": {"type": "string"}},
            {"name": "campaign", "in": "query", "schema": {"type": "integer"},
             "description": "Conversations with a message about this campaign"},
            {"name": "kind", "in": "query", "schema": {"type": "string", "enum": list(KINDS)},
             "description": "Conversations with a message of this kind"},
            {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"},
             "description": "Last message at or after this date or time (UTC when no offset)"}],
        "responses": {"200": {"description": "A page of conversations", "content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "data": {"type": "array", "items": {"$ref": "#/components/schemas/Conversation"}},
                "next": {"type": "string", "nullable": True}}}}}}, **invalid, **errors}}})
    spec.path(path="/api/v1/conversations/{ref}/messages", operations={"get": {
        "summary": "One person's messages, both ways, newest first, with their texts (officers and "
                   "administrators only)",
        "security": bearer, "parameters": [
            {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The contact's pseudonym (C-XXXXXX) or id"},
            page["limit"],
            {"name": "before", "in": "query", "schema": {"type": "string"}, "description": "Cursor from next"}],
        "responses": {"200": {"description": "The contact (pseudonym) and a page of messages", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "contact": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "pseudonym": {"type": "string"}, "country": {"type": "string"},
                    "language": {"type": "string"}}},
                "data": {"type": "array", "items": {"$ref": "#/components/schemas/ConversationMessage"}},
                "next": {"type": "string", "nullable": True}}}}}},
            "404": {"description": "Not found or not visible to you"}, **invalid, **errors}}})
    spec.path(path="/api/v1/polls/{step_id}/results", operations={"get": {
        "summary": "A poll step's results: per choice, by language, country and channel, and the answers "
                   "not understood",
        "security": bearer, "parameters": [
            {"name": "step_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            {"name": "occurrence", "in": "query", "schema": {"type": "string"},
             "description": "One sending of a recurring poll (see occurrences); all together when absent"}],
        "responses": {"200": {"description": "The results", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PollResults"}}}},
            "404": {"description": "No poll step with this id"}, **errors}}})
