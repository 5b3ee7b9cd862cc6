"""Content files: campaigns as YAML in ``campaigns/``, loaded idempotently, exported in the same shape."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from flask_babel import gettext as _
from marshmallow import ValidationError

from ..auth.models import User
from ..core.errors import ServiceError
from ..extensions import db
from . import services
from .models import Campaign
from .schemas import error_paths


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 10:00 as the number 600 (base 60); times must stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if not (tag == "tag:yaml.org,2002:int" and ":" in regexp.pattern)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", re.X),
    list("-+0123456789"))


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


@dataclass
class FileProblem:
    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}"


@dataclass
class LoadResult:
    file: str
    key: str | None = None
    campaign_id: int | None = None
    outcome: str = "error"  # created | updated | unchanged | error
    problems: list[FileProblem] = field(default_factory=list)


def parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The data and the node tree it came from (for line numbers), from one parse."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def line_of(node: yaml.Node | None, path: str) -> int | None:
    """The 1-based line of ``steps[2].content.ht.sms`` in a composed YAML tree (nearest existing parent)."""
    parts = [p for p in re.split(r"\.|\[(\d+)\]", path) if p]
    best = node.start_mark.line + 1 if node is not None else None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            nxt = node.value[int(part)]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        best = node.start_mark.line + 1
    return best


def load_text(text: str, name: str, actor: User | None) -> LoadResult:
    result = LoadResult(file=name)
    try:
        raw, tree = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        result.problems.append(FileProblem(name, "(yaml)", mark.line + 1 if mark else None,
                                           _("Not valid YAML: %(problem)s.", problem=getattr(exc, "problem", "")
                                             or str(exc).splitlines()[0])))
        return result
    if not isinstance(raw, dict):
        result.problems.append(FileProblem(name, "(campaign)", 1, _("Expected a campaign (a mapping of fields).")))
        return result
    try:
        data = services.campaign_schema().load(raw)
    except ValidationError as exc:
        result.problems = [FileProblem(name, path, line_of(tree, path), msg)
                           for path, msg in error_paths(exc.messages)]
        return result
    result.key = data["key"]
    existing = db.session.scalar(sa.select(Campaign).where(Campaign.key == data["key"]))
    try:
        if existing is None:
            campaign = services.create_campaign(data, actor)
            result.outcome = "created"
        else:
            campaign = existing
            result.outcome = "updated" if services.replace_campaign(existing, data, actor) else "unchanged"
    except ServiceError as exc:
        result.problems.append(FileProblem(name, "key", line_of(tree, "key"), exc.message))
        return result
    result.campaign_id = campaign.id
    return result


def campaign_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load_path(path: Path, actor: User | None) -> list[LoadResult]:
    """Load one file or every ``*.yaml`` in a folder. Each file is its own unit: callers commit the
    good ones (the CLI commits when no file failed, so a folder loads all or nothing)."""
    results = []
    for file in campaign_files(path):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            results.append(LoadResult(file=str(file), problems=[FileProblem(
                str(file), "(file)", None, _("The file is not UTF-8: save it as UTF-8 and load it again."))]))
            continue
        results.append(load_text(text, str(file), actor))
    return results


def dump_yaml(campaign: Campaign) -> str:
    return yaml.dump(services.export_campaign(campaign), Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                     width=100, default_flow_style=None)
