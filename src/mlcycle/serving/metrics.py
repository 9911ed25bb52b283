"""The server's Prometheus metrics (`Metrics`): requests and latency by endpoint, rows scored, the
score distribution, the served version, the path scoring it (compiled or sklearn) and its reloads, out-of-range values, the prediction log's
backlog; added up over the workers when $PROMETHEUS_MULTIPROC_DIR is set."""

from __future__ import annotations

import os

from mlcycle.serving.model import Served


class Metrics:
    """Prometheus metrics of one app; multiprocess-aware when $PROMETHEUS_MULTIPROC_DIR is set."""

    LATENCY = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

    def __init__(self, classifier: bool):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("mlcycle_serve_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("mlcycle_serve_request_seconds", "request latency in seconds by endpoint",
                                 ["endpoint"], buckets=self.LATENCY, registry=r)
        self.rows = Counter("mlcycle_serve_rows_scored", "rows scored", registry=r)
        buckets = tuple(round(0.05 * i, 2) for i in range(1, 21)) if classifier else \
            (-1e3, -1e2, -10, -1, 0, 1, 10, 1e2, 1e3, 1e4)
        self.scores = Histogram("mlcycle_serve_prediction_score",
                                "predicted positive-class probability (top-class for multiclass) or predicted value",
                                buckets=buckets, registry=r)
        self.version = Gauge("mlcycle_serve_model_version", "the served model version (number)",
                             multiprocess_mode="livemostrecent", registry=r)
        self.info = Gauge("mlcycle_serve_model_info", "1 for the served version, 0 for earlier ones",
                          ["name", "version", "alias", "run_id"], multiprocess_mode="livemostrecent", registry=r)
        self.path = Gauge("mlcycle_serve_scoring_path", "1 for the path scoring the served version (compiled | sklearn)",
                          ["path"], multiprocess_mode="livemostrecent", registry=r)
        self.reloads = Counter("mlcycle_serve_model_reloads", "switches to a new model version", registry=r)
        self.out_of_range = Counter("mlcycle_serve_out_of_range_values",
                                    "input values outside the schema's min/max, by column", ["column"], registry=r)
        self.log_rows = Gauge("mlcycle_serve_predlog_pending_rows", "rows waiting for the prediction log writer",
                              multiprocess_mode="livesum", registry=r)

    def served(self, s: Served, old: Served | None = None) -> None:
        if old is not None:
            self.info.labels(*self._labels(old)).set(0)
            self.reloads.inc()
        self.info.labels(*self._labels(s)).set(1)
        for path in ("compiled", "sklearn"):
            self.path.labels(path).set(1 if s.path == path else 0)
        try:
            self.version.set(float(s.version))
        except ValueError:
            self.version.set(float("nan"))

    @staticmethod
    def _labels(s: Served):
        i = s.info
        return (str(i.get("name") or ""), s.version, str(i.get("alias") or ""), str(i.get("run_id") or ""))

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import CollectorRegistry, multiprocess

            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return generate_latest(reg)
        return generate_latest(self.registry)
