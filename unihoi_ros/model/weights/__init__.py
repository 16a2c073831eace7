"""The bundled model's files (weights, model card, evaluation, loss curves): data only.

A regular package so that setuptools installs the files as its package data
(``unihoi_ros.model.bundled`` reads them from this folder).
"""
