"""GATO engine: differentiable category optimisation for HEP analyses (no Dash imports).

Importing this package is cheap (numpy only); TensorFlow is imported by ``gato_core.model``
and ``gato_core.training`` when they are used.
"""
from .config import ConfigError, RunConfig
from .scenarios import SCENARIOS, EventSample, generate

__all__ = ["ConfigError", "RunConfig", "SCENARIOS", "EventSample", "generate"]
__version__ = "0.1.0"
