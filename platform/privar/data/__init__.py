"""The video data layer: decoding, clip sampling, datasets, the clip cache, Ray Data streams."""
