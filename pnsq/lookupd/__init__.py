"""nsqlookupd: the directory service that tells consumers which nsqd has which topic."""

from __future__ import annotations

from .lookupd import Lookupd
from .options import LookupdOptions

__all__ = ["Lookupd", "LookupdOptions"]
