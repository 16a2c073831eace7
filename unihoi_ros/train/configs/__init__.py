"""Training configurations (YAML) of the bundled model's legs: data only.

A regular package so that setuptools installs the files as its package data.
"""
