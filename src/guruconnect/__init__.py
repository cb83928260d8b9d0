"""GuruConnect: self-hosted remote support and remote control for MSPs."""

from guruconnect.version import __version__

__all__ = ["__version__"]
