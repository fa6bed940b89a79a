"""Transcripts and reports: what is stored, turned into documents people and auditors read.

``transcript`` assembles a screening's transcript from its audit trail; ``replay`` checks that
the stored rows are what the events say; ``exporters`` writes PDF, CSV and JSON (``pdf`` draws
the pages); ``report`` is the screening log without identifiers.
"""

__all__ = ["exporters", "pdf", "replay", "report", "transcript"]
