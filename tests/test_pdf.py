"""PDF drawing: whole text, the same bytes every time, wrapping as reportlab's, DejaVu found."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics

from flows import Protocol
from reports import pdf
from reports.exporters import transcript_document
from reports.pdf import REGULAR, WIDTH, Paragraph, PdfDocument, Style, render_pdf, wrap
from reports.transcript import build_transcript
from storage.memory import InMemoryRepository
from tests.test_exports import NOW, rich_screening

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


def test_a_transcript_is_drawn_the_same_every_time(seed: Protocol) -> None:
    repo = InMemoryRepository()
    s = rich_screening(repo, seed)
    doc = transcript_document(build_transcript(repo, s, seed, timezone="UTC", now=NOW))
    first = render_pdf(doc)
    assert first.startswith(b"%PDF") and first == render_pdf(doc)


def test_awkward_text_is_drawn_whole_on_pages_that_hold_it() -> None:
    doc = awkward()
    drawn = render_pdf(doc)
    assert drawn == render_pdf(doc)
    assert len(MANY) > 256 and drawn.count(b"/Subtype /TrueType") > 2  # several font subsets
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(drawn)).pages]
    text = "".join("".join(pages).split())
    assert len(pages) > 1 and f"Page {len(pages)} of {len(pages)}" in pages[-1]
    assert "Heading≤≥µ×⁹" in text and "<U+540D><U+5B57>" in text  # no Chinese glyphs
    assert "https://example.org/" + "x" * 200 in text  # the long word broken, nothing lost
    assert "".join(MANY.split()) in text


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
    """Drawing finds DejaVu in matplotlib's data but never imports matplotlib (and numpy)."""
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
