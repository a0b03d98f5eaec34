"""Sphinx configuration for the guides and the API reference.

The guides are Markdown (myst-parser), the API reference comes from the numpy-style docstrings (autodoc + napoleon).
`make docs` builds it with warnings as errors.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "s2sim"
author = "the s2sim authors"
copyright = "2026, the s2sim authors"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# numpy-style docstrings only (the project's one convention)
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"  # type hints once, next to the parameters, not repeated in every signature
autodoc_class_signature = "separated"
autodoc_inherit_docstrings = False  # methods without a docstring of their own (torch overrides) get none

# `backquoted` text in docstrings is code, not a cross-reference to resolve
default_role = "code"
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = "s2sim"
