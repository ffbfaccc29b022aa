"""Stage 3: refinement backends that fit body parameters to 2D keypoints (see `registry.py`)."""
