"""Explicit Parquet schemas of the curriculum tables.

Every table is one aggregate over the shards that passed annotation; a row that cannot be
used keeps its place with `status = "excluded"` and a machine-readable `reason`, and its
scores stay null (never 0).
"""

import pyarrow as pa

from curation.annotation_schemas import EVENT

TRAINING_SAMPLES = pa.schema([
    ("sample_id", pa.string()),  # "<entity_id>:intra" | "<entity_id>:ref:<reference entity_id>"
    ("shard", pa.string()), ("clip_id", pa.string()), ("entity_id", pa.string()),
    ("clip_key", pa.string()), ("identity", pa.string()), ("label", pa.string()), ("is_human", pa.bool_()),
    ("caption", pa.string()), ("global_caption", pa.string()), ("events", pa.list_(EVENT)),
    # subject mask refs: the annotation row (annotation_key, entity_id) holds one COCO RLE
    # per frame of mask_frame_indices
    ("annotation_key", pa.string()), ("mask_frame_indices", pa.list_(pa.int32())),
    # the reference image(s)
    ("reference_kind", pa.string()),  # intra | inter
    ("reference_shard", pa.string()), ("reference_clip_id", pa.string()), ("reference_entity_id", pa.string()),
    ("reference_annotation_key", pa.string()),
    ("reference_frames", pa.list_(pa.int32())),  # frames of the reference clip the crops come from
    ("reference_keys", pa.list_(pa.string())),  # PNG crops in the object store
    ("inter_clip_similarity", pa.float32()),  # null for intra-clip samples
    ("d_sam", pa.int8()),  # 0 intra-clip, 1 inter-clip
    ("status", pa.string()),  # ok | excluded
    ("reason", pa.string()), ("detail", pa.string()),
    ("similarity_backend", pa.string()),
])

DIFFICULTY_SCORES = pa.schema([
    ("sample_id", pa.string()), ("shard", pa.string()), ("clip_id", pa.string()), ("entity_id", pa.string()),
    ("reference_kind", pa.string()),
    ("d_sub", pa.float64()),  # Eq. 1
    ("d_app", pa.float64()),  # Eq. 2
    ("d_sam", pa.int8()),
    ("d_overall", pa.float64()),  # lambda_sub D_sub + lambda_app D_app + lambda_sam D_sam
    ("n_mask_frames", pa.int32()), ("n_regions", pa.int32()), ("n_references", pa.int32()),
    ("app_features", pa.string()),  # "face:<faces backend>" | "appearance:<descriptor>"
    ("status", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
])

DIFFICULTY_QUARTILES = pa.schema([
    ("phase", pa.int32()),  # 1-based
    ("quantile", pa.float64()),  # k / n_phases: 0.25, 0.5, 0.75, 1.0 for four phases
    ("tau", pa.float64()),  # the quantile of D_overall; the last phase's is the maximum
    ("eligible", pa.int64()), ("eligible_intra", pa.int64()), ("eligible_inter", pa.int64()),
])

CURRICULUM_SCHEDULE = pa.schema([
    ("phase", pa.int32()),
    ("start_step", pa.int64()), ("end_step", pa.int64()),  # [start, end) in 0-based optimizer steps
    ("tau", pa.float64()), ("inter_clip_ratio", pa.float64()),
    ("eligible_intra", pa.int64()), ("eligible_inter", pa.int64()),
    ("inter_per_step_min", pa.int32()), ("inter_per_step_max", pa.int32()),
    ("deepspeed_difficulty", pa.int64()), ("deepspeed_eligible", pa.int64()),
])
