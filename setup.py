"""Build hook for the one optional C extension; everything else is configured in pyproject.toml.

``progan_zoo.metrics._swd_kernel`` computes SWD's 1-D distances without sorting (see
progan_zoo/metrics/_swd_kernel.c). It is plain C99 built with the system compiler and no machine-specific
flags, so wheels stay portable. ``optional=True``: where no compiler is available the install still
succeeds and SWD falls back to NumPy's sort with the same numbers (``progan_zoo.metrics.w1.KERNEL``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "progan_zoo.metrics._swd_kernel",
            sources=["progan_zoo/metrics/_swd_kernel.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
