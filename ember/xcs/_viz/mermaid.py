"""Mermaid rendering: a :class:`~.view.View` as a ``flowchart``.

GitHub, GitLab, JupyterLab (``text/vnd.mermaid``) and most Markdown viewers draw it
without graphviz.

Labels are quoted; characters that mermaid would read as syntax (quotes, ``#``,
angle brackets, backticks, ``&``, backslashes, and ``%`` -- ``%%{init}%%`` anywhere
in the text is a directive to mermaid, ``%%`` a comment) become its entity codes, and
line breaks in user text become spaces, so any op name or file name renders as text.
"""

from __future__ import annotations

from ember.xcs._viz.view import Box, View

__all__ = ["to_mermaid"]

_SHAPES: dict[str, tuple[str, str]] = {
    # kind: (opening, closing)
    "input": ('(["', '"])'),
    "op": ('("', '")'),
    "ops": ('[["', '"]]'),
    "glue": ('["', '"]'),
    "sync": ('{{"', '"}}'),
}
_ENTITIES = {
    "#": "#35;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "&": "#amp;",
    "`": "#96;",
    "\\": "#92;",
    "%": "#37;",
}


def _text(line: str) -> str:
    clean = "".join(c if c.isprintable() else " " for c in line)
    return "".join(_ENTITIES.get(c, c) for c in clean)


def _node(box: Box) -> str:
    opening, closing = _SHAPES[box.kind]
    label = "<br/>".join(_text(line) for line in box.label)
    return f"  {box.key}{opening}{label}{closing}"


def to_mermaid(view: View) -> str:
    """The mermaid source of a view (a ``flowchart TD``)."""
    lines = [
        "---",
        f'title: "{_text(view.title)}"',  # a YAML double-quoted string: no quote inside
        "---",
        "flowchart TD",
    ]
    lines += [_node(box) for box in view.boxes]
    for group in view.groups:  # an xcs.map's items, beside its box
        lines.append(f'  subgraph {group.key} ["{_text(group.title)}"]')
        lines += ["  " + _node(box) for box in group.boxes]
        lines += [f"    {s} --> {t}" for s, t, _ in group.edges]
        lines.append("  end")
        lines.append(f"  {group.owner} -.- {group.key}")
    critical: list[int] = []
    for index, (source, target, kind) in enumerate(view.edges):
        arrow = "-.->" if kind == "order" else "-->"
        lines.append(f"  {source} {arrow} {target}")
        if kind == "critical":
            critical.append(index)
    lines += [
        "  classDef op fill:#dbeafe,stroke:#475569",
        "  classDef input fill:#e0f2fe,stroke:#475569",
        "  classDef glue fill:#f3f4f6,stroke:#475569,font-size:11px",
        "  classDef sync fill:#fef3c7,stroke:#475569,font-size:11px",
        "  classDef failed fill:#fecaca,stroke:#dc2626",
        "  classDef cancelled fill:#e5e7eb,stroke:#6b7280,stroke-dasharray:4",
        "  classDef critical stroke:#b45309,stroke-width:3px",
    ]
    for box in [*view.boxes, *(b for g in view.groups for b in g.boxes)]:
        classes = ["op" if box.kind == "ops" else box.kind]
        if box.status in ("failed", "cancelled"):
            classes.append(box.status)
        if box.critical:
            classes.append("critical")
        lines += [f"  class {box.key} {name}" for name in classes]
    if critical:
        indexes = ",".join(str(i) for i in critical)
        lines.append(f"  linkStyle {indexes} stroke:#b45309,stroke-width:3px")
    return "\n".join(lines) + "\n"
