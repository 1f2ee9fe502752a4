"""nas: hardware-aware neural architecture search. The CLI is a thin layer over this API."""

from nas.config import SearchConfig
from nas.errors import DataError, NasError, StudyError, UsageError
from nas.latency import LatencySettings, measure_latency
from nas.latency_table import LatencyPredictor, build_table, load_predictor, validate_table
from nas.proxy import ProxySettings
from nas.reward import Reward
from nas.search import SearchResult, run_search
from nas.timm_models import register_architecture, register_study  # registers timm's `nas_genotype`

__all__ = [
    "DataError", "LatencyPredictor", "LatencySettings", "NasError", "ProxySettings", "Reward", "SearchConfig", "SearchResult",
    "StudyError", "UsageError", "build_table", "load_predictor", "measure_latency", "register_architecture",
    "register_study", "run_search", "validate_table",
]
