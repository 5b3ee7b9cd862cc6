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
                     "400": {"description": "Invalid", "content": {"application/json": {"schema": ref}}},
                     "409": {"description": "Number taken or erased", "content": {"application/json": {"schema": ref}}},
                     **errors}},
    })
    spec.path(path="/api/v1/contacts/{contact_id}", operations={
        "get": {"summary": "One contact", "security": [{"bearer": []}],
                "parameters": [{"name": "contact_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "The contact", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ContactOut"}}}},
                    "404": {"description": "Not found or not visible to you"}, **errors}},
    })
    _campaign_paths(spec, errors, ref)
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
