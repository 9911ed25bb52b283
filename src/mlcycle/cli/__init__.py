"""cli: the `mlcycle` command (main), `mlcycle init` (workspace) and `mlcycle pipeline check` (check). The
top layer.
"""
