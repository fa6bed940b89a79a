"""Transcript exports: JSON and CSV for machines, PDF for people, a ZIP of many.

The JSON carries the audit chain (every event with its hashes), so that
``prescreen audit verify --file transcript.json`` can check it without the database.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

import orjson

from flows.catalogue import tr
from flows.text import Lang
from reports.chain import ChainReport, verify_chain
from reports.pdf import Paragraph, PdfDocument, PdfRenderer, Style, render_pdf
from reports.transcript import Person, Transcript
from storage.audit import ChainLink

# Transcripts are the record an auditor reads: in English, whatever the bot's language.
EN: Lang = "en"

FORMAT = "prescreen-transcript/1"


def _person(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {"telegram_id": person.telegram_id, "name": person.name, "role": person.role}


def transcript_json(t: Transcript) -> dict[str, Any]:
    """The transcript as JSON-compatible data, chain included."""
    s, p = t.screening, t.protocol
    return {
        "format": FORMAT,
        "generated_at": t.generated_at.isoformat(),
        "timezone": t.timezone,
        "trial": {
            "id": p.id,
            "registry": p.registry,
            "title": p.title.en,
            "protocol_version": p.version,
            "protocol_sha256": p.digest,
        },
        "screening": {
            "code": s.code,
            "status": t.status,
            "created_by": s.created_by,
            "created_at": s.created_at.isoformat(),
            "closed_at": s.closed_at.isoformat() if s.closed_at else None,
            "close_kind": s.close_kind,
            "close_reason": s.close_reason,
            "signed_by": _person(t.signed_by),
        },
        "outcome": t.outcome,
        "criteria": [
            {
                "number": c.number,
                "text": c.text,
                "outcome": c.outcome,
                "explanation": list(c.explanation),
            }
            for c in t.criteria
        ],
        "events": [
            {
                "seq": e.entry.seq,
                "kind": e.entry.kind,
                "at": e.entry.at.isoformat(),
                "at_local": e.local.isoformat(),
                "actor": e.entry.actor,
                "actor_name": e.actor.name,
                "actor_role": e.actor.role,
                "description": e.description,
                "payload": e.entry.payload,
                "prev_hash": e.entry.prev_hash,
                "hash": e.entry.hash,
            }
            for e in t.events
        ],
        "chain": {
            "verified": t.chain.ok,
            "events": t.chain.checked,
            "head": t.chain.head,
            "problem": t.chain.problem,
        },
        # Only on failure, so that a verified transcript's bytes do not change.
        **({"verification": {"failed": True, "problems": list(t.failures)}} if t.failures else {}),
    }


def verify_transcript_json(data: dict[str, Any]) -> ChainReport:
    """Check the audit chain carried by an exported JSON transcript, without the database."""
    if data.get("format") != FORMAT:
        return ChainReport(
            str(data.get("screening", {}).get("code", "?")), 0, False, None, f"not a {FORMAT} file"
        )
    links = [
        ChainLink(
            int(e["seq"]),
            str(e["kind"]),
            e["payload"],
            e["actor"],
            datetime.fromisoformat(e["at"]),
            str(e["prev_hash"]),
            str(e["hash"]),
        )
        for e in data["events"]
    ]
    return verify_chain(str(data["screening"]["code"]), links)


CSV_COLUMNS = (
    "code",
    "seq",
    "at_utc",
    "at_local",
    "actor_id",
    "actor_name",
    "actor_role",
    "kind",
    "question",
    "raw",
    "normalised",
    "previous",
    "reason",
    "criterion",
    "approve",
    "status_after",
    "description",
    "hash",
)


def transcript_rows(t: Transcript) -> Iterator[tuple[Any, ...]]:
    """One CSV row per audit event, its fields in the order of :data:`CSV_COLUMNS`."""
    code = t.screening.code
    for e in t.events:
        p = e.entry.payload
        yield (
            code,
            e.entry.seq,
            e.entry.at.isoformat(),
            e.local.isoformat(),
            e.entry.actor,
            e.actor.name,
            e.actor.role,
            e.entry.kind,
            p.get("question", ""),
            p.get("raw", ""),
            p.get("normalised", ""),
            p.get("previous_normalised", ""),
            p.get("reason", "") or "",
            p.get("criterion", ""),
            p.get("approve", ""),
            (p.get("outcome") or {}).get("status", ""),
            e.description,
            e.entry.hash,
        )


def transcript_csv(t: Transcript) -> str:
    """The transcript's events as CSV text, a header row first."""
    out = io.StringIO()
    # Rows as tuples: a dictionary a row (csv.DictWriter) took twice as long.
    writer = csv.writer(out)
    if t.failures:
        writer.writerow(["FAILED VERIFICATION", "; ".join(t.failures)])
    writer.writerow(CSV_COLUMNS)
    writer.writerows(transcript_rows(t))
    return out.getvalue()


def transcript_document(t: Transcript) -> PdfDocument:
    """The transcript laid out for people: what its PDF shows, as plain data."""
    paragraphs: list[Paragraph] = []

    def heading(text: str) -> None:
        paragraphs.append(Paragraph(text, Style.HEADING))

    def para(text: str, style: Style = Style.BODY) -> None:
        paragraphs.append(Paragraph(text, style))

    s, p = t.screening, t.protocol
    heading(tr("pdf_title", EN, code=s.code))
    if t.failures:
        para(tr("pdf_failed", EN), Style.STRONG)
        for problem in t.failures:
            para(f"• {problem}", Style.BULLET)
    para(p.title.en)
    registry = p.registry or tr("pdf_registry_none", EN)
    para(tr("pdf_trial", EN, id=p.id, registry=registry, version=p.version))
    para(tr("pdf_digest", EN, digest=p.digest))
    started, local = f"{s.created_at:%Y-%m-%d %H:%M}", f"{t.local(s.created_at):%Y-%m-%d %H:%M}"
    para(tr("pdf_status", EN, status=t.status, utc=started, local=local, zone=t.timezone))
    if t.signed_by is not None and s.closed_at is not None:
        signer = t.signed_by
        para(
            tr(
                "pdf_signed",
                EN,
                name=signer.name,
                role=signer.role,
                telegram_id=signer.telegram_id,
                at=f"{s.closed_at:%Y-%m-%d %H:%M}",
                meaning=s.close_reason,
            )
        )
    elif s.close_kind:
        reason = f": “{s.close_reason}”" if s.close_reason else ""
        para(tr("pdf_closed", EN, how=tr(f"close_{s.close_kind}", EN), reason=reason))
    heading(tr("pdf_outcome", EN))
    para(t.outcome or t.status)
    heading(tr("pdf_criteria", EN))
    for c in t.criteria:
        para(tr("pdf_criterion", EN, number=c.number, outcome=c.outcome), Style.STRONG)
        para(c.text)
        for line in c.explanation:
            para(f"• {line}", Style.BULLET)
    heading(tr("pdf_events", EN))
    for e in t.events:
        # isoformat, not strftime (%Y-%m-%d %H:%M:%S), which took twice as long
        para(
            f"#{e.entry.seq} {e.entry.at.isoformat(' ', 'seconds')[:19]} UTC "
            f"({e.local.isoformat(timespec='minutes')[11:16]} {t.timezone}) · "
            f"{e.actor.name} ({e.actor.role}, {e.entry.actor})",
            Style.META,
        )
        para(e.description)
    heading(tr("pdf_chain", EN))
    verdict = (
        tr("pdf_chain_verified", EN)
        if t.chain.ok
        else tr("pdf_chain_broken", EN, seq=t.chain.broken_at, problem=t.chain.problem)
    )
    para(tr("pdf_chain_summary", EN, checked=t.chain.checked, verdict=verdict, head=t.chain.head))
    return PdfDocument(
        title=tr("pdf_title", EN, code=s.code),
        header=tr("pdf_header", EN, id=p.id, version=p.version, code=s.code),
        paragraphs=tuple(paragraphs),
        footer=(
            tr("pdf_generated", EN, at=f"{t.generated_at:%Y-%m-%d %H:%M}"),
            tr("pdf_chain_head", EN, head=t.chain.head),
        ),
        created_at=t.generated_at,
    )


def transcript_pdf(t: Transcript) -> bytes:
    """The transcript as a PDF document."""
    return render_pdf(transcript_document(t))


def write_zip(
    target: IO[bytes],
    transcripts: Iterable[Transcript],
    formats: Iterable[str] = ("pdf", "csv", "json"),
    workers: int = 1,
) -> int:
    """Write transcripts into a ZIP one at a time (memory does not grow with their number).

    Args:
        target: Where the ZIP goes.
        transcripts: The transcripts, read one at a time.
        formats: Any of ``pdf``, ``csv``, ``json``.
        workers: Processes drawing the PDFs; 1 draws them in this process.

    Returns:
        The number of screenings written.
    """
    wanted = tuple(formats)
    count = 0
    with (
        # The fastest deflate level: a third of the time of the default for 8 % more bytes.
        zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        PdfRenderer(workers if "pdf" in wanted else 1) as renderer,
    ):

        def add_pdfs(done: list[tuple[str, bytes]]) -> None:
            for name, pdf in done:
                # A PDF's content is compressed already: deflating it again costs time, no space.
                archive.writestr(name, pdf, compress_type=zipfile.ZIP_STORED)

        for t in transcripts:
            base = f"{t.screening.code}/{t.screening.code}"
            if "json" in wanted:
                # Compact UTF-8 JSON written by orjson: the standard library's encoder took a
                # tenth of the exporting process's time.
                archive.writestr(f"{base}.json", orjson.dumps(transcript_json(t)))
            if "csv" in wanted:
                archive.writestr(f"{base}.csv", transcript_csv(t))
            if "pdf" in wanted:
                add_pdfs(renderer.submit(f"{base}.pdf", transcript_document(t)))
            count += 1
        add_pdfs(renderer.finish())
    return count
