"""A template file as data, plus the line of every key, for messages that point at the line to fix.

PyYAML with constructors for CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt a.b`, ...), the
same long-form objects the JSON syntax writes. The line index is a side table (path -> line) built from the
composed node tree, so the data stays plain dicts and lists that aws-sam-translator accepts. JSON is parsed by
the same loader (JSON is YAML's flow syntax) so JSON templates, `cdk synth` output included, get lines too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError

Path_ = tuple[str | int, ...]

# Tags that keep their short name in the long form; every other `!X` becomes `Fn::X`.
_UNPREFIXED = frozenset({"Ref", "Condition"})

# The C parser where libyaml is built in (it is in PyPI's wheels): marks are kept by both.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TemplateLoader(_BaseLoader):  # type: ignore[misc]
    pass


def _short_tag(loader: Any, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in _UNPREFIXED else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":  # `!GetAtt Resource.Attribute`: the long form is a two-item list
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


def _as_text(loader: Any, node: yaml.Node) -> str:
    # `Version: 2012-10-17` is a date to YAML 1.1 but a string to CloudFormation.
    return str(loader.construct_scalar(node))


_TemplateLoader.add_multi_constructor("!", _short_tag)
_TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)


@dataclass(frozen=True, slots=True)
class Document:
    path: Path
    data: dict[str, Any]
    lines: Mapping[Path_, int]  # ("Resources", "Fn", "Properties", "MemorySize") -> 1-based line

    def line_of(self, *paths: Path_) -> int:
        """The line of the first path present; else of the longest present prefix of the first path."""
        for path in paths:
            if path in self.lines:
                return self.lines[path]
        first = paths[0] if paths else ()
        for end in range(len(first) - 1, 0, -1):
            if first[:end] in self.lines:
                return self.lines[first[:end]]
        return 1


def load(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    loader = _TemplateLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{path}{line}: not a valid template (YAML or JSON): {problem}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: not a template: expected a mapping with a Resources section")
    lines: dict[Path_, int] = {}
    _index(node, (), lines)
    return Document(path, data, lines)


def _index(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = (*path, str(key_node.value))
                lines[child] = key_node.start_mark.line + 1
                _index(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            lines[child] = item.start_mark.line + 1
            _index(item, child, lines)
