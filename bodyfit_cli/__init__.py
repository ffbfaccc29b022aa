"""bodyfit: fit a 3D human body model to the people in photos and videos."""

__version__ = "0.1.0"
