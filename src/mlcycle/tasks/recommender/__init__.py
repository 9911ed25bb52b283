"""The recommender task (data.task `recommendation`, docs/recommender.md): a user-item interactions
table in, ranked lists out, served by `POST /recommend`.

- `params`: its params section `recommend` and what it needs of the rest of params.yaml
- `interactions`: reading and checking the interactions, the time split, the content vectors
- `eda`: the interactions' own views (long tails, ratings over time, sparsity, cold start)
- `recommenders`: popularity, collaborative filtering (ALS or EASE), content and the hybrid
- `ranking`: the ranking metrics (NDCG, recall, MAP, hit rate at k)
- `search`: the ALS hyperparameter search (train.search)
- `stages`: what the stage notebooks under notebooks/recommender/ call
- `model`: the saved and served model (an MLflow pyfunc; a registered version's: `load_registered`)
- `monitor`: popularity and activity drift, new users and items, live quality of the served lists
- `card`: its parts of the model card (metrics with intervals, slices, cold start, explanations)
- `serve`: what the server adds: `POST /recommend`, feedback on the listed items
"""

from mlcycle.core.tasks import GateKind, Task

TASK = Task(
    name="recommender",
    objectives=("recommendation",),
    summary="ranked lists of items for a user from an interactions table (popularity, ALS or EASE, content, hybrid)",
    targets={"recommendation": "ratings"},
    feedback_noun="items clicked or rated",
    params_section="recommend",
    params_model="mlcycle.tasks.recommender.params:RecommendParams",
    stage_params={"validate": ("recommend",), "eda": ("recommend",), "features": ("recommend",),
                  "train": ("recommend",), "evaluate": ("recommend",)},
    monitor_module="mlcycle.tasks.recommender.monitor",
    card_sections="mlcycle.tasks.recommender.card:sections",
    serving_module="mlcycle.tasks.recommender.serve",
    releases=(),  # /recommend answers from the champion only: no canary or shadow routing (serving/release.py)
    # a random list from a catalogue of thousands recalls almost nothing; popularity recalls a few percent
    gate_kinds=(GateKind("recommendation", tells=("ndcg_at_k",), primary="ndcg_at_k", minimums={"recall_at_k": 0.01}),),
    hooks={"index": "mlcycle.tasks.recommender.stages:index_section",
           "load": "mlcycle.tasks.recommender.model:load_registered",
           "check_params": "mlcycle.tasks.recommender.params:check"},
)
