"""Shared helpers of every layer: validation, rows, devices, files, downloads, home.

Private to skplice. The only modules of the package that import scikit-learn's private
names live here, so a scikit-learn upgrade that moves one is fixed in one place.
"""
