"""Plain PDF documents: wrapped paragraphs on A5 pages, a running header and a footer.

A document is frozen data (:class:`PdfDocument`), so it can be built where the transcript is
and drawn in another process (:mod:`reports.exporters` does, for bulk exports). Drawing uses
reportlab's canvas. Line breaks are computed here, before drawing, so the page count is known
when the first footer ("Page 1 of 5") is written; they are cached, because the criteria texts
repeat in every transcript of a trial.

Bulk exports draw thousands of documents, so drawing takes a few shortcuts past reportlab's
per-line and per-document work (each says what it saves). Every shortcut writes exactly the
bytes reportlab writes; ``tests/test_pdf.py`` draws documents both ways and compares.
"""

from __future__ import annotations

import enum
import importlib.util
import io
import re
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from reportlab.lib.rl_accel import escapePDF, fp_str
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfdoc, pdfmetrics, ttfonts
from reportlab.pdfbase.pdfdoc import (
    PDFArray,
    PDFDocument,
    PDFName,
    PDFStream,
    PDFStreamFilterZCompress,
    PDFTrueTypeFont,
    PDFZCompress,
)
from reportlab.pdfbase.ttfonts import TTFont, TTFontFace
from reportlab.pdfgen.canvas import Canvas

from flows.catalogue import tr

__all__ = [
    "Paragraph",
    "PdfDocument",
    "PdfRenderer",
    "Style",
    "font_dir",
    "pdf_name",
    "pdfdoc_encode",
    "render_pdf",
    "unicode_cmap",
    "wrap",
]

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

    def __reduce__(self) -> tuple[Any, ...]:
        # Bulk exports hand thousands of documents to worker processes: sent as the texts and
        # one byte per paragraph for its style, not one pickled object per paragraph.
        styles = bytes(_STYLE_NUMBER[p.style] for p in self.paragraphs)
        texts = tuple(p.text for p in self.paragraphs)
        return _document, (self.title, self.header, texts, styles, self.footer, self.created_at)


_STYLES = tuple(Style)
_STYLE_NUMBER = {style: number for number, style in enumerate(_STYLES)}


def _document(
    title: str,
    header: str,
    texts: tuple[str, ...],
    styles: bytes,
    footer: tuple[str, ...],
    created_at: datetime,
) -> PdfDocument:
    """A document from what :meth:`PdfDocument.__reduce__` pickled."""
    paragraphs = tuple(Paragraph(t, _STYLES[n]) for t, n in zip(texts, styles, strict=True))
    return PdfDocument(title, header, paragraphs, footer, created_at)


def font_dir() -> Path:
    """Where the DejaVu fonts are: matplotlib's data, found without importing matplotlib.

    DejaVu Sans covers ≤ ≥ × µ ⁹ and the other symbols of lab values; matplotlib ships it.
    Importing matplotlib (and numpy with it) took 0.4 s in every process that draws PDFs, the
    worker processes of a bulk export included.
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib, which ships the DejaVu fonts, is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


K = TypeVar("K")
V = TypeVar("V")


class _Kept(Generic[K, V]):
    """The last :attr:`KEPT` values made, by key: a trial's documents share a few subsets."""

    KEPT = 32

    def __init__(self) -> None:
        self._values: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for ``key``, made and kept if there is none."""
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = make()
            if len(self._values) > self.KEPT:
                self._values.popitem(last=False)
        else:
            self._values.move_to_end(key)
        return value

    def __len__(self) -> int:
        return len(self._values)


class _ReusedSubsets(TTFontFace):
    """A font face that keeps the font programs it has embedded, compressed, for reuse.

    Each document embeds the subset of the font it uses: ASCII, then the other characters in
    the order they first appear. A trial's transcripts use the same texts, so most embed the
    same subsets, and building and compressing them (about 70 KB for the two fonts) was a
    quarter of a document's time. The bytes are exactly those reportlab would write.
    """

    programs: _Kept[tuple[int, ...], tuple[bytes, bytes]]

    def _program(self, subset: Sequence[int]) -> tuple[bytes, bytes]:
        def make() -> tuple[bytes, bytes]:
            raw = super(_ReusedSubsets, self).makeSubset(subset)
            return raw, zlib.compress(raw)

        return self.programs.get(tuple(subset), make)

    def makeSubset(self, subset: Sequence[int]) -> bytes:
        """The subset's font program (TrueType), compressed as reportlab would, kept."""
        return self._program(subset)[0]

    def addSubsetObjects(self, doc: PDFDocument, fontname: str, subset: list[int]) -> object:
        """Embed the subset, handing reportlab the program already compressed."""
        reference = super().addSubsetObjects(doc, fontname, subset)  # type: ignore[no-untyped-call]
        # The stream under the name reportlab gives it; should a later reportlab name it
        # otherwise, the stream is left to reportlab, which then compresses it itself.
        stream = doc.idToObject.get(f"fontFile:{self.filename}({fontname})")
        if doc.compression and isinstance(stream, PDFStream):
            # reportlab compresses a stream only when no filter is named in its dictionary.
            stream.content = self._program(subset)[1]
            stream.dictionary["Filter"] = PDFArray([PDFName("FlateDecode")])
        return reference


class _Codes(dict[int, int]):
    """A document's character codes in its first font subset, as a :meth:`str.translate` table.

    A character without one translates to U+0100, which Latin-1 cannot encode: the line then
    goes to reportlab, which assigns the new code.
    """

    def __missing__(self, char: int) -> int:
        return 0x100


class _KnownCodes(TTFont):
    """A TrueType font that encodes a line in one pass once its characters have codes.

    reportlab gives each character a code in the document's font subset the first time it is
    drawn, and then looks every character of every line up again in a Python loop. Once a
    line's characters all have a code in the first subset (ASCII has from the start, the few
    others after their first line), the line is encoded with :meth:`str.translate` instead;
    any other line goes to reportlab, which assigns the new codes. The codes, and so the
    bytes written, are exactly reportlab's.
    """

    def __init__(self, name: str, filename: str) -> None:
        super().__init__(name, filename)
        # Per document, the codes it has; dropped whenever reportlab may have added some.
        self._codes: WeakKeyDictionary[Any, _Codes] = WeakKeyDictionary()

    def splitString(
        self, text: str | bytes, doc: Any, encoding: str = "utf-8"
    ) -> list[tuple[int, bytes]]:
        """The line as (subset, codes) runs, as reportlab's, in one pass when it can be."""
        if text and isinstance(text, str):
            codes = self._codes.get(doc)
            if codes is None and (state := self.state.get(doc)) is not None:
                assigned: dict[int, int] = state.assignments  # type: ignore[attr-defined]
                codes = _Codes((c, n) for c, n in assigned.items() if n < 256)
                if 32 in codes:
                    codes[0xA0] = codes[32]  # reportlab draws a no-break space as a space
                self._codes[doc] = codes
            if codes is not None:
                try:
                    return [(0, text.translate(codes).encode("latin-1"))]
                except UnicodeEncodeError:
                    del self._codes[doc]  # reportlab assigns the new codes
        result: list[tuple[int, bytes]] = super().splitString(text, doc, encoding)
        return result

    def addObjects(self, doc: Any) -> None:
        """Add the document's subsets of this font, as reportlab does.

        Their glyph widths and character maps repeat from one document to the next, so they
        are formatted and compressed once, not for every document.
        """
        super().addObjects(doc)
        for key, obj in doc.idToObject.items():
            widths = getattr(obj, "Widths", None)
            if isinstance(obj, PDFTrueTypeFont) and type(widths) is PDFArray:
                obj.Widths = _Widths(widths.sequence)  # type: ignore[attr-defined]
            elif (
                key.startswith("toUnicodeCMap:")
                and isinstance(obj, PDFStream)
                and obj.filters == [PDFZCompress]
            ):
                obj.filters = [_KEPT_COMPRESSED]


class _Widths(PDFArray):
    """A subset's glyph widths: numbers, so their PDF text is the same in every document."""

    formatted: _Kept[tuple[object, ...], bytes] = _Kept()

    def format(self, document: Any, IND: bytes = b"\n ") -> bytes:
        """The widths as reportlab writes them, formatted once for all documents."""
        return self.formatted.get(
            (tuple(self.sequence), IND), lambda: super(_Widths, self).format(document, IND)
        )


class _KeptCompression(PDFStreamFilterZCompress):
    """reportlab's deflate filter, remembering what it compressed (the same maps recur)."""

    compressed: _Kept[str | bytes, bytes] = _Kept()

    def encode(self, text: str | bytes) -> bytes:
        """The text compressed as reportlab's filter does it."""
        return self.compressed.get(text, lambda: super(_KeptCompression, self).encode(text))


_KEPT_COMPRESSED = _KeptCompression()


T = TypeVar("T")
# reportlab's own text encoding and name formatting, which the faster ones below stand in for.
_REPORTLAB_ENCODE = pdfdoc.pdfdocEnc
_REPORTLAB_NAME = pdfdoc.PDFName
# The characters below 128 that PDFDocEncoding lacks (reportlab's codec refuses them).
_NOT_IN_PDFDOC = re.compile("[\x18-\x1f]")


def pdfdoc_encode(x: str | T) -> bytes | T:
    """Text as PDFDocEncoding bytes, as reportlab's ``pdfdocEnc``, ASCII without its codec.

    reportlab encodes every number, name and keyword it writes through a codec written in
    Python; below 128 that codec is ASCII except for eight control characters it refuses,
    which go to it still.
    """
    if isinstance(x, str):
        if x.isascii() and _NOT_IN_PDFDOC.search(x) is None:
            return x.encode("ascii")
        return _REPORTLAB_ENCODE(x)
    return x


@lru_cache(maxsize=1024)
def _name(data: str) -> str:
    name: str = _REPORTLAB_NAME(data)
    return name


def pdf_name(data: str, lo: str = "\x21", hi: str = "\x7e") -> str:
    """A PDF name, as reportlab's ``PDFName``, remembered.

    A document writes the same few names (``/Type``, ``/Font``, ...) hundreds of times, and
    reportlab escapes each one character by character in Python.
    """
    if lo == "\x21" and hi == "\x7e" and type(data) is str:
        return _name(data)
    name: str = _REPORTLAB_NAME(data, lo, hi)
    return name


_REPORTLAB_CMAP = ttfonts.makeToUnicodeCMap


@lru_cache(maxsize=64)
def _cmap(fontname: str, subset: tuple[int, ...]) -> str:
    cmap: str = _REPORTLAB_CMAP(fontname, subset)
    return cmap


def unicode_cmap(fontname: str, subset: Sequence[int]) -> str:
    """A font subset's character map, as reportlab's ``makeToUnicodeCMap``, remembered.

    Nearly every document of a trial embeds the same subsets, and reportlab formats each map
    anew, a line per character.
    """
    return _cmap(fontname, tuple(subset))


@cache
def _fonts() -> dict[str, frozenset[int]]:
    """Register the fonts once per process; each font's name with the code points it can draw.

    Also has reportlab's document writer use :func:`pdfdoc_encode`, :func:`pdf_name` and
    :func:`unicode_cmap`, which return what its own functions return (``tests/test_pdf.py``):
    they save a tenth of drawing a PDF.
    """
    pdfdoc.pdfdocEnc = pdfdoc_encode
    pdfdoc.PDFName = pdf_name
    ttfonts.makeToUnicodeCMap = unicode_cmap
    drawable = {}
    for name in (REGULAR, BOLD):
        font = _KnownCodes(name, str(font_dir() / f"{name}.ttf"))
        # The face reportlab parsed, given the reuse above (parsing it twice costs 0.1 s).
        face = font.face
        face.__class__ = _ReusedSubsets
        assert isinstance(face, _ReusedSubsets)
        face.programs = _Kept()
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


@cache
def _font(name: str) -> _KnownCodes:
    font = pdfmetrics.getFont(name)
    assert isinstance(font, _KnownCodes), name
    return font


@cache
def _size_and_leading(size: float) -> str:
    # reportlab's default leading: 1.2 times the size.
    return f"{fp_str(size)} Tf {fp_str(size * 1.2)} TL"


def _text_object(
    canvas: Canvas, lines: Sequence[_Line], subset_names: dict[tuple[str, int], str]
) -> str:
    """A page's lines as one PDF text object (drawing each line on its own costs twice as much).

    These are the operators reportlab's text object writes for ``setFont``, ``moveCursor``
    and ``textOut``, written here without its bookkeeping for each line (measuring every line
    again, looking its font up again), which cost more than writing the operators.
    ``subset_names`` holds the document's font subsets' names, as reportlab gave them: the
    lines alternate between fonts, so each line selects its font anew.
    """
    # The document the canvas writes: fonts assign their codes per document.
    pdf = canvas._doc  # type: ignore[attr-defined]
    _, _, _, x, y = lines[0]
    ops = ["BT", f"1 0 0 1 {fp_str(x, y)} Tm"]
    face: tuple[str, float] | None = None
    font, subset, selected = _font(REGULAR), -1, ""
    for index, (line, name, size, line_x, line_y) in enumerate(lines):
        if (name, size) != face:
            face, font, subset = (name, size), _font(name), -1
            selected = _size_and_leading(size)
        if index:
            ops.append(f"{fp_str(line_x - x, line_y - y)} Td")
            x, y = line_x, line_y
        shown = []
        for run, codes in font.splitString(line, pdf):
            if run != subset:
                subset = run
                # The first time, reportlab also adds the font to the document.
                internal = subset_names.get((name, run))
                if internal is None:
                    internal = subset_names[name, run] = font.getSubsetInternalName(run, pdf)
                shown.append(f"{internal} {selected}")
            shown.append(f"({escapePDF(codes)}) Tj")
        ops.append(" ".join(shown))
    ops.append("ET")
    return " ".join(ops)


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
    subset_names: dict[tuple[str, int], str] = {}
    for lines in _placed(doc):
        canvas.addLiteral(_text_object(canvas, lines, subset_names))
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
