"""Plain PDF documents: wrapped paragraphs on A5 pages, a running header and a footer.

A document is frozen data (:class:`PdfDocument`), so it can be built where the transcript is
and drawn in another process (:mod:`reports.exporters` does, for bulk exports). Drawing uses
reportlab's canvas and text objects. Line breaks are computed here, before drawing, so the
page count is known when the first footer ("Page 1 of 5") is written; they are cached,
because the criteria texts repeat in every transcript of a trial.
"""

from __future__ import annotations

import enum
import importlib.util
import io
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from multiprocessing import get_context
from pathlib import Path

from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from flows.catalogue import tr

__all__ = ["Paragraph", "PdfDocument", "PdfRenderer", "Style", "font_dir", "render_pdf", "wrap"]

PAGE = (148 * mm, 210 * mm)  # A5: a narrow page stays readable on a phone
LEFT, RIGHT, TOP, BOTTOM = 10 * mm, 10 * mm, 16 * mm, 18 * mm
WIDTH = PAGE[0] - LEFT - RIGHT
REGULAR, BOLD = "DejaVuSans", "DejaVuSans-Bold"


class Style(enum.Enum):
    """How a paragraph looks: font, size in points, line height, space before, indent."""

    HEADING = (BOLD, 10, 5 * mm, 2 * mm, 0.0)
    BODY = (REGULAR, 8, 4 * mm, 0.0, 0.0)
    STRONG = (BOLD, 8, 4 * mm, 0.0, 0.0)
    BULLET = (REGULAR, 8, 4 * mm, 0.0, 3 * mm)
    META = (BOLD, 7, 4 * mm, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of text; line breaks in it are kept, long lines are wrapped."""

    text: str
    style: Style = Style.BODY


@dataclass(frozen=True, slots=True)
class PdfDocument:
    """A document: its header on every page, its paragraphs, its footer under the page number."""

    title: str
    header: str
    paragraphs: tuple[Paragraph, ...]
    footer: tuple[str, ...]
    created_at: datetime


def font_dir() -> Path:
    """Where the DejaVu fonts are: matplotlib's data, found without importing matplotlib.

    DejaVu Sans covers ≤ ≥ × µ ⁹ and the other symbols of lab values; matplotlib ships it.
    Importing matplotlib (and numpy with it) would slow the start of every process that draws
    PDFs, the worker processes of a bulk export included.
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib, which ships the DejaVu fonts, is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


@cache
def _fonts() -> dict[str, frozenset[int]]:
    """Register the fonts once per process; each font's name with the code points it can draw."""
    drawable = {}
    for name in (REGULAR, BOLD):
        font = TTFont(name, str(font_dir() / f"{name}.ttf"))
        pdfmetrics.registerFont(font)
        drawable[name] = frozenset(font.face.charToGlyph)
    return drawable


def _drawable(text: str, font: str) -> str:
    """Write characters the font cannot draw as their code points (``<U+5F20>``).

    DejaVu has no Chinese glyphs: a name or a reason typed in Chinese would otherwise be drawn
    as empty boxes. The JSON and CSV exports keep the exact text.
    """
    known = _fonts()[font]
    if known.issuperset(map(ord, text)):  # nearly always: checked without a Python loop
        return text
    # Control characters (a typed line break) are not glyphs; the layout deals with them.
    return "".join(c if ord(c) in known or c < " " else f"<U+{ord(c):04X}>" for c in text)


def _too_wide(line: str, font: str, size: float, width: float) -> Iterator[str]:
    """Break a line with a word wider than the page (a pasted link, a hash) between characters."""
    current = ""
    for char in line:
        if current and pdfmetrics.stringWidth(current + char, font, size) > width:
            yield current
            current = char.lstrip()
        else:
            current += char
    if current:
        yield current


@lru_cache(maxsize=4096)
def wrap(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    """The lines ``text`` takes in a column ``width`` points wide.

    Breaks at spaces, keeps the text's own line breaks, and breaks a word that does not fit on
    a line of its own between characters; characters the font cannot draw are written as code
    points first.
    """
    lines: list[str] = []
    for part in _drawable(text, font).split("\n"):
        cleaned = part if part.isprintable() else "".join(c if c >= " " else " " for c in part)
        whole = " ".join(cleaned.split())
        # Most parts fit on one line: measured once, rather than word by word as reportlab
        # does. The margin leaves the edge, where the two sums may round apart, to reportlab.
        if pdfmetrics.stringWidth(whole, font, size) <= width - 0.01:
            lines.append(whole)
            continue
        for line in simpleSplit(cleaned, font, size, width) or [""]:
            if pdfmetrics.stringWidth(line, font, size) <= width:
                lines.append(line)
            else:
                lines.extend(_too_wide(line, font, size, width))
    return tuple(lines)


# A line placed on its page: text, font, size, x, y.
_Line = tuple[str, str, float, float, float]


def _paginate(paragraphs: tuple[Paragraph, ...]) -> list[list[_Line]]:
    top = PAGE[1] - TOP - 7 * mm  # under the header
    pages: list[list[_Line]] = [[]]
    y = top
    for paragraph in paragraphs:
        font, size, leading, space, indent = paragraph.style.value
        y -= space
        for text in wrap(paragraph.text, font, size, WIDTH - indent):
            if y - leading < BOTTOM and pages[-1]:
                pages.append([])
                y = top
            y -= leading
            pages[-1].append((text, font, size, LEFT + indent, y))
    return pages


def _placed(doc: PdfDocument) -> list[list[_Line]]:
    """Every page's lines: the running header, the paragraphs' lines, the footer."""
    pages = _paginate(doc.paragraphs)
    header = (_drawable(doc.header, BOLD), BOLD, 8.0, LEFT, PAGE[1] - TOP - 4 * mm)
    placed = []
    for number, lines in enumerate(pages, 1):
        page = tr("pdf_page", "en", number=number, total=len(pages))
        footer = (f"{page} · {doc.footer[0]}", *doc.footer[1:]) if doc.footer else (page,)
        rows = [
            (_drawable(row, REGULAR), REGULAR, 6.0, LEFT, 11 * mm - 3 * mm * index)
            for index, row in enumerate(footer)
        ]
        placed.append([header, *lines, *rows])
    return placed


def render_pdf(doc: PdfDocument) -> bytes:
    """Draw the document; the same document always gives the same bytes."""
    _fonts()
    out = io.BytesIO()
    # invariant: no random document id, so equal documents give equal files
    canvas = Canvas(out, pagesize=PAGE, pageCompression=1, invariant=1)
    canvas.setTitle(doc.title)
    canvas.setCreator("Prescreen")
    created = doc.created_at.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")
    canvas.setDateFormatter(lambda *_: created)
    for lines in _placed(doc):
        text = canvas.beginText()
        face: tuple[str, float] | None = None
        for line, font, size, x, y in lines:
            if (font, size) != face:  # the lines of a paragraph share their font
                face = font, size
                text.setFont(font, size)
            text.setTextOrigin(x, y)
            text.textOut(line)
        canvas.drawText(text)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


# Documents a worker process draws per task: the exporting process then pays the hand-over
# (a future, a queue item, the wake-ups on both sides) once per batch instead of per document.
BATCH = 8


def render_pdfs(docs: Sequence[PdfDocument]) -> list[bytes]:
    """Draw several documents (one task of a worker process)."""
    return [render_pdf(doc) for doc in docs]


class PdfRenderer:
    """Renders many documents, in worker processes when ``workers`` > 1, in the order given.

    Bulk exports spend most of their time drawing PDFs, and drawing one does not depend on
    another, so the work spreads over the machine's cores, a batch of documents per task. At
    most :attr:`most_waiting` documents wait at any time: memory does not grow with their
    number.

    Use as a context manager: :meth:`submit` documents, write what it returns, and at the end
    write what :meth:`finish` returns.
    """

    def __init__(self, workers: int = 1) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._window = 2 * workers  # batches being drawn or done but not yet handed back
        self._batch: list[tuple[str, PdfDocument]] = []
        self._waiting: deque[tuple[list[str], Future[list[bytes]]]] = deque()
        self._submitted = 0

    @property
    def most_waiting(self) -> int:
        """How many submitted documents may at most not have been handed back yet."""
        return (self._window + 1) * BATCH

    def __enter__(self) -> PdfRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, name: str, doc: PdfDocument) -> list[tuple[str, bytes]]:
        """Queue a document; returns the documents finished so far (name, PDF), in order."""
        self._submitted += 1
        if self._workers <= 1 or self._submitted == 1:
            # The first document is drawn here: exporting one screening starts no processes.
            return [(name, render_pdf(doc))]
        self._batch.append((name, doc))
        if len(self._batch) >= BATCH:
            self._send()
        done: list[tuple[str, bytes]] = []
        while self._waiting and (len(self._waiting) > self._window or self._waiting[0][1].done()):
            names, future = self._waiting.popleft()
            done += zip(names, future.result(), strict=True)
        return done

    def finish(self) -> list[tuple[str, bytes]]:
        """Wait for the documents still being drawn; returns them in order."""
        if self._batch:
            self._send()
        done = [
            item
            for names, future in self._waiting
            for item in zip(names, future.result(), strict=True)
        ]
        self._waiting.clear()
        return done

    def _send(self) -> None:
        if self._pool is None:
            # spawn, not fork: the caller may run threads (a database pool, a checkpointer)
            # that a forked child would inherit in an unknown state.
            self._pool = ProcessPoolExecutor(self._workers, mp_context=get_context("spawn"))
        names = [name for name, _ in self._batch]
        docs = [doc for _, doc in self._batch]
        self._waiting.append((names, self._pool.submit(render_pdfs, docs)))
        self._batch = []
