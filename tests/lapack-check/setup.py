from setuptools import Extension, setup

# `lapack` comes from the guest's C library prefix that eryx's recipe
# (xtask/recipes/eryx-lapack-check) names: liblapack.a, BLAS and CBLAS in it.
setup(ext_modules=[Extension("lapack_check", ["lapack_check.c"], libraries=["lapack"])])
