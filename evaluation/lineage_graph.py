"""The typed graph `reactid lineage` returns: nodes in discovery order, edges child-ward, as
one JSON document (`to_dict`) or a readable tree (`text`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import ReactIDError


class LineageError(ReactIDError, ValueError):
    """A lineage target cannot be resolved; the message says what was tried."""


@dataclass
class Node:
    id: str
    type: str
    summary: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lineage:
    """A typed graph rooted at the target: nodes in discovery order, edges child-ward."""

    target: str
    root: str | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, node: Node, parent: str | None = None, relation: str = "") -> str:
        if node.id not in self.nodes:
            self.nodes[node.id] = node
        if parent is None and self.root is None:
            self.root = node.id
        if parent is not None and (parent, node.id, relation) not in self.edges:
            self.edges.append((parent, node.id, relation))
        return node.id

    def of_type(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "root": self.root,
            "nodes": [{"id": n.id, "type": n.type, "summary": n.summary, **n.attrs} for n in self.nodes.values()],
            "edges": [{"from": a, "to": b, "relation": r} for a, b, r in self.edges],
        }

    def text(self) -> str:
        children: dict[str, list[tuple[str, str]]] = {}
        for a, b, r in self.edges:
            children.setdefault(a, []).append((b, r))
        lines: list[str] = []
        seen: set[str] = set()

        def walk(node_id: str, depth: int, relation: str) -> None:
            node = self.nodes[node_id]
            prefix = "  " * depth + (f"{relation}: " if relation else "")
            if node_id in seen:
                lines.append(f"{prefix}{node.type} {node.id} (above)")
                return
            seen.add(node_id)
            lines.append(f"{prefix}{node.type} {node.summary}")
            for child, rel in children.get(node_id, []):
                walk(child, depth + 1, rel)

        if self.root is not None:
            walk(self.root, 0, "")
        return "\n".join(lines)
