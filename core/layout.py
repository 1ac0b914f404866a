"""Where everything lives in the object store: the one owner of every key pattern.

Stages, reports, the Dagster assets and the generated dvc.yaml all take their keys from the
functions here, so a table, a marker or a folder cannot be written under one name and read
under another. Every function returns a relative POSIX key (core.object_store.check_key).

The same functions build the templates of a stage declaration's outputs: given a template
field such as ``"{shard}"`` as the partition (``table("scene_clips", "{shard}")`` is
``tables/scene_clips/{shard}.parquet``), they return the template dvc.yaml lists, which is the
key the stage writes.

Top-level folders:

    tables/<stage>/<partition>.parquet      a stage's table
    metrics/<stage>/<partition>.json        a stage's completion marker (core.stage)
    metrics/<report>.json                   report metrics DVC shows
    progress/<stage>/<partition>/           per-item results of a run in progress (core.execution)
    clips/<shard>/<clip_id>.mp4             scene clips; clips_cropped/ after curation's crop
    previews/<shard>/                       annotated preview clips, thumbnails, contact sheet
    index/shard_order/<shard>.json          the order shards joined the duplicate index
    references/<shard>/<entity>/            reference crops of the training samples
    curriculum/                             the schedule and DeepSpeed's curriculum files
    cache/                                  latent/embedding cache and its index
    training/main/<phase>/<run>             curriculum training runs; training/ablations/<variant>/<run>
    models/<name>/                          the model registry (record, export, training log)
    benchmarks/                             demo benchmark sets and their manifest
    videos/<benchmark>/<model>/             generated benchmark videos
    scores/<benchmark>/<model>.json         score cards
    submissions/                            packaged IPVG submissions
    reports/, plots/                        human-facing reports and DVC plot data
"""

from __future__ import annotations

# The partition key of a stage that reads every shard and writes one output.
AGGREGATE = "all-shards"

TABLES = "tables"
METRICS = "metrics"
PROGRESS = "progress"
CLIPS = "clips"
CROPPED_CLIPS = "clips_cropped"
PREVIEWS = "previews"
SHARD_ORDER = "index/shard_order"
REFERENCES = "references"
CURRICULUM = "curriculum"
CACHE = "cache"
TRAINING = "training"
MAIN_RUNS = f"{TRAINING}/main"
ABLATION_RUNS = f"{TRAINING}/ablations"
MODELS = "models"
BENCHMARKS = "benchmarks"
VIDEOS = "videos"
SCORES = "scores"
SUBMISSIONS = "submissions"
REPORTS = "reports"
PLOTS = "plots"

# Every top-level folder above: a key outside these is not the project's.
TOP_LEVEL = (TABLES, METRICS, PROGRESS, CLIPS, CROPPED_CLIPS, PREVIEWS, SHARD_ORDER.split("/")[0], REFERENCES,
             CURRICULUM, CACHE, TRAINING, MODELS, BENCHMARKS, VIDEOS, SCORES, SUBMISSIONS, REPORTS, PLOTS)


def join(prefix: str, *names: str) -> str:
    """``prefix/name/...``; an empty prefix adds nothing (a destination at the store's root)."""
    return "/".join(p for p in (prefix.rstrip("/"), *names) if p)


# ---------------------------------------------------------------- stage outputs and markers


def tables_prefix(stage: str) -> str:
    """The folder of every partition's table of ``stage``."""
    return f"{TABLES}/{stage}"


def table(stage: str, partition: str) -> str:
    """A stage's table for one partition (a shard, AGGREGATE, a variant, ``<benchmark>/<model>``)."""
    return f"{tables_prefix(stage)}/{partition}.parquet"


def marker(stage: str, partition: str) -> str:
    """A stage's completion marker for one partition: written last, it vouches for the outputs."""
    return f"{METRICS}/{stage}/{partition}.json"


def progress(stage: str, partition: str) -> str:
    """Where a run records its finished items until its marker is written."""
    return f"{PROGRESS}/{stage}/{partition}"


def report_metrics(name: str) -> str:
    """A report's metrics file (DVC ``metrics``): ``metrics/<name>.json``."""
    return f"{METRICS}/{name}.json"


def report(name: str) -> str:
    """A report for people: ``reports/<name>`` (``name`` includes its suffix, or is a folder)."""
    return f"{REPORTS}/{name}"


def plot_data(name: str) -> str:
    """A plot's data file (DVC ``plots``): ``plots/<name>``."""
    return f"{PLOTS}/{name}"


# Reports and plot data of the stages.
CURATION_REPORT = report("curation_report.md")
CURATION_REPORT_METRICS = report_metrics("curation_report")
ANNOTATION_REPORT = report("annotation_report.md")
ANNOTATION_REPORT_METRICS = report_metrics("annotation_report")
DIFFICULTY_HISTOGRAM_PNG = report("difficulty_histogram.png")
DIFFICULTY_HISTOGRAM_CSV = plot_data("difficulty_histogram.csv")
DATASET_BROWSER = report("dataset_browser.html")
LEADERBOARD_MD = report("leaderboard.md")
LEADERBOARD_HTML = report("leaderboard.html")
LEADERBOARD_PLOTS = report("leaderboard")
LEADERBOARD_CSV = plot_data("leaderboard.csv")
TRAINING_LOSS_CSV = plot_data("training_loss.csv")
GX_DOCS = report("gx")
LAKEFS_PROMOTIONS = f"{METRICS}/lakefs/promotions"


def gx_docs(shard: str, run_id: str) -> str:
    """Great Expectations' data docs of one gate run."""
    return f"{GX_DOCS}/{shard}/{run_id}"


def lakefs_promotion(tag: str) -> str:
    """The record of one lakeFS promotion."""
    return f"{LAKEFS_PROMOTIONS}/{tag}.json"


# ---------------------------------------------------------------- curation objects


def clip_file(clip_id: str) -> str:
    """A clip's file name inside its folder."""
    return f"{clip_id}.mp4"


def clips(shard: str) -> str:
    """The folder of a shard's scene clips (published whole)."""
    return f"{CLIPS}/{shard}"


def clip(shard: str, clip_id: str) -> str:
    return f"{clips(shard)}/{clip_file(clip_id)}"


def cropped_clips(shard: str) -> str:
    """The folder of a shard's curated clips that curation cropped."""
    return f"{CROPPED_CLIPS}/{shard}"


def cropped_clip(shard: str, clip_id: str) -> str:
    return f"{cropped_clips(shard)}/{clip_file(clip_id)}"


def previews(shard: str) -> str:
    """The folder of a shard's preview clips, thumbnails and contact sheet."""
    return f"{PREVIEWS}/{shard}"


def shard_order_record(shard: str) -> str:
    """When ``shard`` joined the duplicate index."""
    return f"{SHARD_ORDER}/{shard}.json"


def pool_shard(pool_prefix: str, shard: str) -> str:
    """A raw pool shard's folder in the store (params ``raw_videos.pool_prefix``)."""
    return f"{pool_prefix.strip('/')}/{shard}"


# ---------------------------------------------------------------- training


def reference_name(shard: str, entity_id: str, frame: int) -> str:
    """A reference crop's name inside the references folder."""
    return f"{shard}/{entity_id}/f{frame:05d}.png"


def reference(shard: str, entity_id: str, frame: int) -> str:
    """A training sample's reference crop of an entity at one frame."""
    return f"{REFERENCES}/{reference_name(shard, entity_id, frame)}"


SCHEDULE = f"{CURRICULUM}/schedule.json"
DEEPSPEED_CONFIG = f"{CURRICULUM}/deepspeed_config.json"
DEEPSPEED_INDEX = f"{CURRICULUM}/deepspeed"
# DeepSpeed writes its data clusters here, beside the store's folders, while it trains.
DEEPSPEED_CLUSTERS = "deepspeed_clusters"
LATENT_INDEX = f"{CACHE}/index.json"
EMBEDDINGS = f"{CACHE}/embeddings"


def embeddings(encoders_fingerprint: str, prefix: str = EMBEDDINGS) -> str:
    """The embedding cache of one set of encoders."""
    return f"{prefix}/{encoders_fingerprint}"


def main_run_folder(phase: str) -> str:
    """The folder of a curriculum phase's training runs."""
    return f"{MAIN_RUNS}/{phase}"


def main_run(phase: str, run_name: str) -> str:
    """One training run of a curriculum phase (named by what changes the weights)."""
    return f"{main_run_folder(phase)}/{run_name}"


def ablation_run_folder(variant: str) -> str:
    return f"{ABLATION_RUNS}/{variant}"


def ablation_run(variant: str, run_name: str) -> str:
    return f"{ablation_run_folder(variant)}/{run_name}"


def training_loss_plot(run: str) -> str:
    """The loss curve of a training stage (``curriculum_phase_1``) or ablation (``ablation_<variant>``)."""
    return report(f"{TRAINING}/{run}_loss.png")


# ---------------------------------------------------------------- models and evaluation


def model(name: str) -> str:
    """A registered model's folder (record, export, training log)."""
    return f"{MODELS}/{name}"


def model_record(name: str) -> str:
    return f"{model(name)}/model.json"


def model_export(name: str) -> str:
    return f"{model(name)}/export"


def model_training_log(name: str) -> str:
    return f"{model(name)}/steps.jsonl"


BENCHMARK_MANIFEST = f"{BENCHMARKS}/manifest.json"


def benchmark_file(benchmark: str, file_name: str) -> str:
    return f"{BENCHMARKS}/{benchmark}/{file_name}"


def benchmark_videos(benchmark: str, model_name: str) -> str:
    """A model's generated videos of a benchmark."""
    return f"{VIDEOS}/{benchmark}/{model_name}"


def score_card(run: str) -> str:
    """The score card of a ``<benchmark>/<model>`` run."""
    return f"{SCORES}/{run}.json"


def submission_folder(folder: str) -> str:
    return f"{SUBMISSIONS}/{folder}"
