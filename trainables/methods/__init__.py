"""Architecture distributions, one file per method, found by name through `registry`."""

from trainables.methods.base import ArchDistribution, ArchStepContext, EdgeWeights
from trainables.methods.registry import available_methods, get_method, make_distribution

__all__ = ["ArchDistribution", "ArchStepContext", "EdgeWeights", "available_methods", "get_method",
           "make_distribution"]
