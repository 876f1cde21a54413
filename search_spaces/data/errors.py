"""The error every data check raises for files or folders that exist but cannot be used."""

from __future__ import annotations


class DataCheckError(ValueError):
    """A data file or folder that exists but cannot be used (corrupt, truncated, unsafe, inconsistent with the rest
    of the data set); the message names the file or folder and what is wrong."""
