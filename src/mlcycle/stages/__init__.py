"""stages: one module per pipeline stage (the notebook of the same name calls it), plus the stage
helpers search, fairness, explain and show. Imports core only.
"""
