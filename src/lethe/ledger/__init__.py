"""The provenance ledger: every document, run, exposure, version, request and event."""

from lethe.ledger.records import DocumentRecord
from lethe.ledger.store import Ledger, make_engine

__all__ = ["DocumentRecord", "Ledger", "make_engine"]
