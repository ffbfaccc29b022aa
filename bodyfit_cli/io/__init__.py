"""Reading inputs and writing outputs: images, input lists, meshes, and atomic file writes."""
