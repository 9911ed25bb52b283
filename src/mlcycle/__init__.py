"""mlcycle: a notebook-first, reproducible workspace for the machine-learning lifecycle.

Importing the package does no work: no folders, no tracking URI, no logging set-up.
"""

__version__ = "0.1.0"
