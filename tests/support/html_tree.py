"""Just enough of a DOM, from the stdlib's HTMLParser, to check a rendered page in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = {"meta", "link", "br", "img", "input", "hr", "rect", "line", "circle", "polyline"}
"""HTML void elements, and the SVG shapes our pages always close themselves."""


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def all(self, tag: str) -> list[Node]:
        found = [self] if self.tag == tag else []
        for child in self.children:
            found += child.all(tag)
        return found

    def where(self, tag: str, **attrs: str) -> list[Node]:
        """Elements of `tag` whose attributes match (`data_key_id` means `data-key-id`; a
        `class_` value is one class among the element's)."""
        return [n for n in self.all(tag) if all(n.has(k, v) for k, v in attrs.items())]

    def has(self, name: str, value: str) -> bool:
        name = name.rstrip("_").replace("_", "-")
        if name == "class":
            return value in self.attrs.get("class", "").split()
        return self.attrs.get(name) == value

    @property
    def all_text(self) -> str:
        return self.text + "".join(c.all_text for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or all(n.tag != tag for n in self.stack):
            return
        while self.stack[-1].tag != tag:
            self.stack.pop()
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(Node("#text", {}, text=data))


def parse(page: str) -> Node:
    builder = _Builder()
    builder.feed(page)
    builder.close()
    return builder.root
