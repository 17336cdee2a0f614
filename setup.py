"""Only the optional C accelerator of the online-time core; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the pure NumPy code runs.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("video_analytics._fastlog", ["plugins/video_analytics/_fastlog.c"],
                             extra_compile_args=["-O3"], optional=True)])
