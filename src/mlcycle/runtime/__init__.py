"""runtime: how stages run: the runner every notebook stage goes through, its hooks, MLflow
tracking and the warm tracking daemon. Imports core, stages and lifecycle.
"""
