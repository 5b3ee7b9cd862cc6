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
    return spec.to_dict()
