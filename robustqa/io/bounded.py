"""Parsers with bounds, so hostile input gets an error instead of a crash, a hang or a huge allocation.

- JSON nested deeper than `MAX_DEPTH` raises `json.JSONDecodeError` (callers already report those on one line
  naming the file and line), instead of a RecursionError in the decoder or in whatever walks the object later.
- YAML is read with the safe loader, refusing documents whose aliases would expand past `MAX_YAML_NODES`
  nodes (the "billion laughs" bomb) or that nest deeper than `MAX_DEPTH`.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100
MAX_YAML_NODES = 100_000


def loads_json(text: str | bytes) -> Any:
    """`json.loads`, with nesting deeper than MAX_DEPTH reported as a JSONDecodeError."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep(text, None) from None
    # Counting brackets is C-speed; only text that could be deep is walked.
    brackets = text.count("[") + text.count("{") if isinstance(text, str) else text.count(b"[") + text.count(b"{")
    if brackets > MAX_DEPTH and json_depth(value) > MAX_DEPTH:
        raise _too_deep(text, value)
    return value


def json_depth(value: Any) -> int:
    """Nesting depth of lists and dicts (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in node if isinstance(child, (list, dict)))
    return deepest


def _too_deep(text: str | bytes, value: Any) -> json.JSONDecodeError:
    doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", doc, 0)


class YamlBoundsError(ValueError):
    """A YAML document past the bounds; the message says which."""


def load_yaml(text: str) -> Any:
    """`yaml.safe_load` of one document, refusing alias bombs and deep nesting (YamlBoundsError); YAML syntax
    errors raise yaml.YAMLError as usual."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlBoundsError(f"nested deeper than {MAX_DEPTH} levels") from None
        if node is None:
            return None
        _check_yaml_node(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_yaml_node(root: Any) -> None:
    """Count the nodes the document expands to (an alias counts its whole target each time) and its depth."""
    import yaml

    sizes: dict[int, int] = {}
    # Post-order without recursion: a node's size is known once its children's are.
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, expanded = stack.pop()
        if depth > MAX_DEPTH:
            raise YamlBoundsError(f"nested deeper than {MAX_DEPTH} levels")
        if id(node) in sizes:
            continue
        children = _yaml_children(node, yaml)
        if expanded or not children:
            size = 1 + sum(sizes.get(id(c), 1) for c in children)
            if size > MAX_YAML_NODES:
                raise YamlBoundsError(
                    f"expands to more than {MAX_YAML_NODES} values (an alias bomb?); write the values out"
                )
            sizes[id(node)] = size
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)


def _yaml_children(node: Any, yaml: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
