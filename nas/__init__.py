"""nas: hardware-aware neural architecture search. The CLI is a thin layer over this API."""

from nas.config import SearchConfig
from nas.errors import DataError, NasError, StudyError, UsageError
from nas.latency import LatencySettings, measure_latency
from nas.proxy import ProxySettings
from nas.reward import Reward
from nas.search import SearchResult, run_search

__all__ = [
    "DataError", "LatencySettings", "NasError", "ProxySettings", "Reward", "SearchConfig", "SearchResult",
    "StudyError", "UsageError", "measure_latency", "run_search",
]
