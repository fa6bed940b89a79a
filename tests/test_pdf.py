"""PDF drawing: the shortcuts taken for speed write exactly the bytes reportlab writes."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfdoc, pdfmetrics, ttfonts
from reportlab.pdfbase.pdfmetrics import getFont
from reportlab.pdfbase.ttfonts import TTFont, TTFontFace
from reportlab.pdfgen.canvas import Canvas

from flows import Protocol
from reports import pdf
from reports.exporters import transcript_document
from reports.pdf import BOLD, REGULAR, WIDTH, Paragraph, PdfDocument, Style, render_pdf, wrap
from reports.transcript import build_transcript
from storage.memory import InMemoryRepository
from tests.test_exports import NOW, rich_screening


def reportlab_text_object(
    canvas: Canvas,
    lines: Sequence[tuple[str, str, float, float, float]],
    subset_names: dict[tuple[str, int], str],
) -> str:
    """A page's lines drawn through reportlab's own text object (which names subsets itself)."""
    _, _, _, x, y = lines[0]
    text = canvas.beginText(x, y)
    face: tuple[str, float] | None = None
    for index, (line, font, size, line_x, line_y) in enumerate(lines):
        if (font, size) != face:
            face = font, size
            text.setFont(font, size)
        if index:
            text.moveCursor(line_x - x, y - line_y)
            x, y = line_x, line_y
        text.textOut(line)
    return str(text.getCode())


def drawn_by_reportlab(doc: PdfDocument, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The document drawn with none of the shortcuts: reportlab's fonts, text object, encoding,
    names and character maps."""
    render_pdf(doc)  # registers the fonts
    with monkeypatch.context() as m:
        m.setattr(pdf, "_text_object", reportlab_text_object)
        m.setattr(pdfdoc, "pdfdocEnc", pdf._REPORTLAB_ENCODE)
        m.setattr(pdfdoc, "PDFName", pdf._REPORTLAB_NAME)
        m.setattr(ttfonts, "makeToUnicodeCMap", pdf._REPORTLAB_CMAP)
        for name in (REGULAR, BOLD):
            font = getFont(name)
            assert isinstance(font, TTFont)
            m.setattr(font, "__class__", TTFont)  # reportlab's encoding, widths and maps
            m.setattr(font.face, "__class__", TTFontFace)  # its subsetting and compression
        return render_pdf(doc)


# Every character DejaVu Sans has among Latin, Greek and Cyrillic: more than one font subset
# holds (a subset has 256 codes), so lines switch subsets in the middle.
MANY = "".join(chr(c) for c in range(0x100, 0x500) if c in pdf._fonts()[REGULAR])


def awkward() -> PdfDocument:
    """Typed line breaks, a no-break space, a word wider than the page, undrawable characters,
    more characters than one font subset holds, every style."""
    paragraphs = (
        Paragraph("Heading ≤ ≥ µ × ⁹", Style.HEADING),
        Paragraph("first line\nsecond\xa0line\twith a tab", Style.BODY),
        Paragraph("https://example.org/" + "x" * 200, Style.BULLET),
        Paragraph("名字 张伟 and “quotes”", Style.STRONG),
        Paragraph(MANY, Style.BODY),
        Paragraph("ASCII again after the others " + MANY[::7], Style.META),
        *(Paragraph(f"line {i} " + MANY[i : i + 30], Style.BODY) for i in range(120)),
    )
    return PdfDocument(
        title="T ≤ 名",
        header="Header · 名",
        paragraphs=paragraphs,
        footer=("footer ≥", "second footer"),
        created_at=datetime(2026, 11, 3, tzinfo=UTC),
    )


def test_a_transcript_is_drawn_byte_for_byte_as_reportlab_draws_it(
    seed: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = InMemoryRepository()
    s = rich_screening(repo, seed)
    doc = transcript_document(build_transcript(repo, s, seed, timezone="UTC", now=NOW))
    first, again = render_pdf(doc), render_pdf(doc)  # the second reuses what the first kept
    assert first == again == drawn_by_reportlab(doc, monkeypatch)
    faces = [font.face for name in (REGULAR, BOLD) if isinstance(font := getFont(name), TTFont)]
    assert all(isinstance(face, pdf._ReusedSubsets) and len(face.programs) for face in faces)


def test_awkward_text_is_drawn_byte_for_byte_as_reportlab_draws_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = awkward()
    first, again = render_pdf(doc), render_pdf(doc)
    assert first == again == drawn_by_reportlab(doc, monkeypatch)
    assert len(MANY) > 256 and first.count(b"/Subtype /TrueType") > 2  # several subsets


def reportlab_wrap(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    """Wrapping with reportlab's word-by-word measure for every part."""
    lines: list[str] = []
    for part in pdf._drawable(text, font).split("\n"):
        cleaned = part if part.isprintable() else "".join(c if c >= " " else " " for c in part)
        for line in simpleSplit(cleaned, font, size, width) or [""]:
            if pdfmetrics.stringWidth(line, font, size) <= width:
                lines.append(line)
            else:
                lines.extend(pdf._too_wide(line, font, size, width))
    return tuple(lines)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("aW m.,≤µ名\n\t  -" + "i" * 5), max_size=160),
    style=st.sampled_from(list(Style)),
    narrow=st.floats(min_value=0, max_value=0.9),
)
def test_wrapping_breaks_lines_where_reportlab_does(text: str, style: Style, narrow: float) -> None:
    font, size, _, _, indent = style.value
    width = (WIDTH - indent) * (1 - narrow)
    assert wrap.__wrapped__(text, font, size, width) == reportlab_wrap(text, font, size, width)


def test_a_document_survives_the_trip_to_a_worker_process() -> None:
    doc = awkward()
    assert pickle.loads(pickle.dumps(doc)) == doc


def test_fonts_are_matplotlibs_found_without_importing_it() -> None:
    """Drawing finds DejaVu in matplotlib's data but never imports matplotlib (0.4 s a process)."""
    import matplotlib

    assert pdf.font_dir() == Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from reports.pdf import Paragraph, PdfDocument, render_pdf\n"
        "doc = PdfDocument('t', 'h', (Paragraph('≤ 9.5 g/dL'),), ('f',), datetime.now(UTC))\n"
        "assert render_pdf(doc).startswith(b'%PDF')\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parent.parent)


def _outcome(function: Callable[[str], object], text: str) -> object:
    try:
        return function(text)
    except Exception as exc:  # the same refusal, as the same exception type
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x2FF)) | st.text())
def test_pdf_encoding_and_names_are_reportlabs(text: str) -> None:
    """What the document writer uses instead of reportlab's codec and names: the same results."""
    assert _outcome(pdf.pdfdoc_encode, text) == _outcome(pdf._REPORTLAB_ENCODE, text)
    assert pdf.pdfdoc_encode(text.encode()) == text.encode()  # bytes pass through
    assert _outcome(pdf.pdf_name, text) == _outcome(pdf._REPORTLAB_NAME, text)
    assert _outcome(pdf.pdf_name, text) == _outcome(pdf._REPORTLAB_NAME, text)  # remembered


def test_character_maps_are_reportlabs_and_remembered() -> None:
    subset = [*range(32, 127), 0x2264, 0x00B5]
    cmap = pdf.unicode_cmap("AAAAAA+DejaVuSans", subset)
    assert cmap == pdf._REPORTLAB_CMAP("AAAAAA+DejaVuSans", subset)
    assert pdf.unicode_cmap("AAAAAA+DejaVuSans", subset) is cmap
    assert pdf.unicode_cmap("AAAAAB+DejaVuSans", subset) != cmap  # its name is in it


def test_every_character_below_256_encodes_as_reportlab_does() -> None:
    for code in range(256):
        char = chr(code)
        assert _outcome(pdf.pdfdoc_encode, char) == _outcome(pdf._REPORTLAB_ENCODE, char), code
