"""OTLP trace ingest and assembly: the capability that turns exported spans into calls.

Decoding and the frameworks' mappers live in :mod:`convoscope.ingest.otlp` (pure); this package keeps the
spans, tracks which conversations are still open, and assembles each into a call once it goes quiet.
"""
