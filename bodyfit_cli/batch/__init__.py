"""Running many inputs: what a run shares (`Job`), the pipelines one process holds, and the engines that
spread inputs over processes (`ray_engine`)."""
