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
        self.requests = Counter("mlcycle_serve_requests", "HTTP requests by endpoint, status, answering version "
                                "and route (champion | canary | shadow; empty outside /predict, /recommend and /forecast)",
                                ["endpoint", "status", "version", "route"], registry=r)
        self.latency = Histogram("mlcycle_serve_request_seconds", "request latency in seconds by endpoint, "
                                 "version and route (shadow: the candidate's scoring after the answer)",
                                 ["endpoint", "version", "route"], buckets=self.LATENCY, registry=r)
        self.rows = Counter("mlcycle_serve_rows_scored", "rows scored", registry=r)
        buckets = tuple(round(0.05 * i, 2) for i in range(1, 21)) if classifier else \
            (-1e3, -1e2, -10, -1, 0, 1, 10, 1e2, 1e3, 1e4)
        self.scores = Histogram("mlcycle_serve_prediction_score",
                                "predicted positive-class probability (top-class for multiclass) or predicted value",
                                ["version", "route"], buckets=buckets, registry=r)
        self.version = Gauge("mlcycle_serve_model_version", "the served model version (number)",
                             multiprocess_mode="livemostrecent", registry=r)
        self.info = Gauge("mlcycle_serve_model_info", "1 for the served version, 0 for earlier ones",
                          ["name", "version", "alias", "run_id"], multiprocess_mode="livemostrecent", registry=r)
        self.path = Gauge("mlcycle_serve_scoring_path", "1 for the path scoring the served version (compiled | sklearn)",
                          ["path"], multiprocess_mode="livemostrecent", registry=r)
        self.reloads = Counter("mlcycle_serve_model_reloads", "switches to a new model version", registry=r)
        self.out_of_range = Counter("mlcycle_serve_out_of_range_values",
                                    "input values outside the schema's min/max, by column", ["column"], registry=r)
        self.release_share = Gauge("mlcycle_serve_release_share", "share of requests the candidate scores "
                                   "(canary: answered; shadow: 1; 0 when off or no candidate is loaded)",
                                   ["mode"], multiprocess_mode="livemostrecent", registry=r)
        self.release_decisions = Counter("mlcycle_serve_release_decisions", "release decisions (promote | rollback) "
                                         "the server saw when it reloaded after one", ["decision"], registry=r)
        self.candidate_version = Gauge("mlcycle_serve_candidate_version", "the candidate version served beside the "
                                       "champion (number; 0 when none)", multiprocess_mode="livemostrecent", registry=r)
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

    def release(self, mode: str, share: float, candidate: Served | None) -> None:
        """The release gauges: the share per mode (0 for the other modes) and the candidate's version."""
        for m in ("off", "canary", "shadow"):
            self.release_share.labels(m).set(share if m == mode else 0.0)
        try:
            self.candidate_version.set(float(candidate.version) if candidate is not None else 0.0)
        except ValueError:
            self.candidate_version.set(float("nan"))

    def decision(self, decision: str, version: str) -> None:
        """Count a release decision once per server: with several workers only the first to record
        this version's decision in $PROMETHEUS_MULTIPROC_DIR counts it."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            try:
                os.close(os.open(os.path.join(folder, f"release-{decision}-{version}.seen"),
                                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                return
            except OSError:
                pass
        self.release_decisions.labels(decision).inc()

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
