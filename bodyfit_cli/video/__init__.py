"""Video: tracking people across frames, temporal smoothing, and the path of one clip."""
