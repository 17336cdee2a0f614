"""Only the optional C accelerators (online time, plays); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the pure NumPy code runs.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("video_analytics._fastlog", ["plugins/video_analytics/_fastlog.c"],
                             extra_compile_args=["-O3"], optional=True),
                   Extension("video_analytics._fastplay", ["plugins/video_analytics/_fastplay.c"],
                             extra_compile_args=["-O3"], optional=True)])
