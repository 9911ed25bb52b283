"""Generates mlcycle-serve.json, the Grafana dashboard of `mlcycle serving start`'s Prometheus metrics,
with Grafana's foundation SDK (its Grafana 11 build, pinned in pyproject.toml):

    python deploy/grafana/build_dashboard.py          # rewrites deploy/grafana/mlcycle-serve.json
    python deploy/grafana/build_dashboard.py --check  # exit 1 if the committed JSON is stale

Every query reads the server's own series (the scrape job `mlcycle-serve` of
deploy/prometheus/prometheus.yml); panels split by `version` and `route` (champion | canary |
shadow) show a release beside the champion. Import the JSON in Grafana (Dashboards > New > Import)
and pick the Prometheus data source.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).with_name("mlcycle-serve.json")
UID = "mlcycle-serve"
DS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
JOB = 'job=~"$job"'
PREDICT = f'{JOB}, endpoint="/predict"'
PREDICT_RATE = f"sum by (version, route) (rate(mlcycle_serve_requests_total{{{PREDICT}}}[$__rate_interval]))"


def query(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)


def series(title: str, description: str, unit: str, *targets: prometheus.Dataquery, w: int = 12,
           stacked: bool = False) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).description(description).unit(unit).datasource(DS)
         .line_width(1).fill_opacity(10 if not stacked else 40).height(8).span(w))
    if stacked:
        p = p.stacking(model.StackingConfig(mode=model.StackingMode.NORMAL))
    for t in targets:
        p = p.with_target(t)
    return p


def single(title: str, description: str, unit: str, target: prometheus.Dataquery, w: int = 6) -> stat.Panel:
    return (stat.Panel().title(title).description(description).unit(unit).datasource(DS)
            .with_target(target).height(4).span(w))


def build() -> dict:
    """The dashboard as Grafana's JSON model (a dict)."""
    d = (dash.Dashboard("mlcycle serving").uid(UID).tags(["mlcycle", "serving"]).refresh("30s")
         .time("now-3h", "now").timezone("browser").editable()
         .description("Requests, latency, scores, prediction log and releases of `mlcycle serving start`")
         .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
         .with_variable(dash.QueryVariable("job").label("Job").datasource(DS)
                        .query("label_values(up, job)").current(model.VariableOption(
                            text="mlcycle-serve", value="mlcycle-serve", selected=True)).include_all(False)))

    d = (d.with_row(dash.Row("Service"))
         .with_panel(single("Targets up", "scrape targets of the job answering /metrics", "none",
                            query(f"sum(up{{{JOB}}})")))
         .with_panel(single("Served version", "the model version answering requests", "none",
                            query(f"max(mlcycle_serve_model_version{{{JOB}}})")))
         .with_panel(single("Rows scored / s", "rows scored per second, all versions", "reqps",
                            query(f"sum(rate(mlcycle_serve_rows_scored_total{{{JOB}}}[$__rate_interval]))")))
         .with_panel(single("Prediction log backlog", "rows waiting for the prediction log writer", "none",
                            query(f"max(mlcycle_serve_predlog_pending_rows{{{JOB}}})")))
         .with_panel(series("Requests / s", "HTTP requests per second by endpoint and status", "reqps",
                            query(f"sum by (endpoint, status) (rate(mlcycle_serve_requests_total{{{JOB}}}"
                                  "[$__rate_interval]))", "{{endpoint}} {{status}}")))
         .with_panel(series("/predict error ratio", "share of /predict answered with a 5xx, by version "
                            "and route (alert: above 1% for 5 minutes)", "percentunit",
                            query(f'(sum by (version, route) (rate(mlcycle_serve_requests_total{{{PREDICT}, '
                                  f'status=~"5.."}}[$__rate_interval])) or 0 * {PREDICT_RATE}) / {PREDICT_RATE}',
                                  "v{{version}} {{route}}"))))

    d = (d.with_row(dash.Row("Latency"))
         .with_panel(series("/predict latency p50 and p99", "quantiles of /predict latency by version and "
                            "route (alert: p99 above 0.5 s for 10 minutes)", "s",
                            query("histogram_quantile(0.99, sum by (version, route, le) "
                                  f"(rate(mlcycle_serve_request_seconds_bucket{{{PREDICT}}}[$__rate_interval])))",
                                  "p99 v{{version}} {{route}}", "A"),
                            query("histogram_quantile(0.5, sum by (version, route, le) "
                                  f"(rate(mlcycle_serve_request_seconds_bucket{{{PREDICT}}}[$__rate_interval])))",
                                  "p50 v{{version}} {{route}}", "B")))
         .with_panel(series("Latency by endpoint (p99)", "p99 of every endpoint", "s",
                            query("histogram_quantile(0.99, sum by (endpoint, le) "
                                  f"(rate(mlcycle_serve_request_seconds_bucket{{{JOB}}}[$__rate_interval])))",
                                  "{{endpoint}}"))))

    d = (d.with_row(dash.Row("Scores"))
         .with_panel(series("Mean score", "mean predicted score (probability of the positive class, or the "
                            "predicted value) by version and route; alerts compare the last hour with the "
                            "last day and a candidate with the champion", "none",
                            query(f"sum by (version, route) (rate(mlcycle_serve_prediction_score_sum{{{JOB}}}"
                                  "[$__rate_interval])) / sum by (version, route) "
                                  f"(rate(mlcycle_serve_prediction_score_count{{{JOB}}}[$__rate_interval]))",
                                  "v{{version}} {{route}}")))
         .with_panel(heatmap.Panel().title("Score distribution").datasource(DS)
                     .description("predicted scores per bucket over time")
                     .with_target(query(f"sum by (le) (increase(mlcycle_serve_prediction_score_bucket{{{JOB}}}"
                                        "[$__rate_interval]))", "{{le}}").format(PromQueryFormat.HEATMAP))
                     .calculate(False).height(8).span(12))
         .with_panel(series("Out-of-range values / s", "input values outside the schema's min/max, by column",
                            "short", query(f"sum by (column) (rate(mlcycle_serve_out_of_range_values_total{{{JOB}}}"
                                           "[$__rate_interval]))", "{{column}}")))
         .with_panel(series("Model reloads", "switches to a new model version (alias moved or release "
                            "decided)", "short",
                            query(f"sum(increase(mlcycle_serve_model_reloads_total{{{JOB}}}[$__rate_interval]))",
                                  "reloads"))))

    d = (d.with_row(dash.Row("Release"))
         .with_panel(series("Release share", "share of traffic the candidate answers (canary) or scores "
                            "(shadow)", "percentunit",
                            query(f"max by (mode) (mlcycle_serve_release_share{{{JOB}}})", "{{mode}}")))
         .with_panel(series("Release decisions", "promotions and rollbacks decided on live evidence", "short",
                            query(f"sum by (decision) (increase(mlcycle_serve_release_decisions_total{{{JOB}}}"
                                  "[$__rate_interval]))", "{{decision}}")))
         .with_panel(series("Requests / s by version and route", "who answers: the champion, the canary; "
                            "shadow rows are scored beside them", "reqps",
                            query(f"sum by (version, route) (rate(mlcycle_serve_requests_total{{{PREDICT}}}"
                                  "[$__rate_interval]))", "v{{version}} {{route}}"), stacked=False)))
    return json.loads(json.dumps(d.build(), cls=JSONEncoder))


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.name} is stale: run python deploy/grafana/build_dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
