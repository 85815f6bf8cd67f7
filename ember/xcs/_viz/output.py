"""Picking a renderer, writing files, and what a notebook displays.

``Trace.draw`` comes here: graphviz when its ``dot`` binary and Python package are
there, matplotlib otherwise, a clear :class:`ImportError` when neither is (a bare
install without the ``viz`` extra). The format comes from ``format=`` or the file's
suffix (svg, png, pdf, dot). Files are written whole or not at all, and a path that
cannot be written says so.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from ember.xcs._viz import dot
from ember.xcs._viz.view import View

__all__ = ["FORMATS", "Drawing", "draw_view", "format_for", "write_file"]

FORMATS = ("svg", "png", "pdf", "dot")

INSTALL_HINT = (
    "Drawing a trace needs the viz extra: pip install 'ember-xcs[viz]' (graphviz and "
    "matplotlib). For the best pictures also install graphviz's dot program "
    "(apt install graphviz, brew install graphviz, conda install graphviz)."
)


class Drawing:
    """A drawn trace, as notebooks display it (SVG, or PNG/PDF bytes when asked).

    Attributes:
        format: ``svg``, ``png``, ``pdf`` or ``dot``.
        data: The drawing: text for svg and dot, bytes for png and pdf.
        renderer: ``graphviz`` or ``matplotlib``.
    """

    def __init__(self, fmt: str, data: str | bytes, renderer: str) -> None:
        self.format = fmt
        self.data = data
        self.renderer = renderer

    def _repr_svg_(self) -> str | None:
        return self.data if self.format == "svg" and isinstance(self.data, str) else None

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" and isinstance(self.data, bytes) else None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the drawing to ``path`` (in its own format) and return the path."""
        return write_file(path, self.data)

    def __repr__(self) -> str:
        return f"<xcs trace drawing: {self.format} by {self.renderer}, {len(self.data)} bytes>"


def format_for(path: str | os.PathLike[str] | None, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else the path's suffix, else svg.

    Raises:
        ValueError: An unknown format, or a path whose suffix names none.
    """
    if fmt is None:
        if path is None:
            return "svg"
        fmt = Path(path).suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise ValueError(
                f"cannot tell the drawing format from the file name {os.fspath(path)!r}: "
                f"use a suffix among {', '.join(FORMATS)}, or pass format=..."
            )
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"unknown drawing format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return fmt


def write_file(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path``, replacing it only once everything is written.

    Raises:
        OSError: The path cannot be written (same type as the underlying error,
            with a message that names the path).
    """
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    payload = data.encode() if isinstance(data, str) else data
    try:
        partial.write_bytes(payload)
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise type(exc)(
            exc.errno,
            f"cannot write the drawing to {os.fspath(path)!r}: {exc.strerror}. Choose a "
            "path in an existing folder you can write to",
        ) from exc
    return target


def draw_view(view: View, fmt: str) -> Drawing:
    """Render ``view`` in ``fmt`` with graphviz if it is there, else matplotlib."""
    if fmt == "dot":
        return Drawing("dot", dot.to_dot(view), "graphviz")
    if dot.available():
        data = dot.render(view, fmt)
        return Drawing(fmt, data.decode() if fmt == "svg" else data, "graphviz")
    try:
        import matplotlib

        from ember.xcs._viz.plots import graph_figure
    except ImportError as missing:
        raise ImportError(INSTALL_HINT) from missing
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in the SVG
        graph_figure(view).savefig(buffer, format=fmt)
    data = buffer.getvalue()
    return Drawing(fmt, data.decode() if fmt == "svg" else data, "matplotlib")


def to_json_file(path: str | os.PathLike[str], document: Any) -> Path:
    """Write ``document`` as JSON to ``path`` (see :func:`write_file`)."""
    import json

    return write_file(path, json.dumps(document))
