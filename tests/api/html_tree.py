"""A small HTML tree for assertions on server-rendered pages (the standard library's parser; no
BeautifulSoup in the environment): find elements by tag, class, id or attribute, read text."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def walk(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def find_all(self, tag: str | None = None, *, cls: str | None = None,
                 **attrs: str | bool) -> list[Node]:
        """Descendants matching the tag, having the class, and the attributes (``True``: any
        value; ``data_x`` means ``data-x``)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        found = []
        for node in self.walk():
            if tag and node.tag != tag:
                continue
            if cls and cls not in node.attrs.get("class", "").split():
                continue
            if all(name in node.attrs and (value is True or node.attrs[name] == value)
                   for name, value in wanted.items()):
                found.append(node)
        return found

    def find(self, tag: str | None = None, *, cls: str | None = None,
             **attrs: str | bool) -> Node | None:
        matches = self.find_all(tag, cls=cls, **attrs)
        return matches[0] if matches else None


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    """The document tree of ``html``."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
