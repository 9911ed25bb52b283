"""cli: the `mlcycle` command (main), `mlcycle init` (workspace) and `mlcycle check` (check). The
top layer.
"""
