"""I/O adapters of the video analytics pipeline: Redis, MySQL, MongoDB and the data root."""
