"""bodyfit: fit a 3D human body model to the people in photos and videos."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bodyfit")  # the installed distribution's, i.e. pyproject's
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
