"""Explicit Parquet schemas of the curation tables."""

import pyarrow as pa

RAW_VIDEOS = pa.schema(
    [
        ("video_id", pa.string()),
        ("shard", pa.string()),
        ("source_path", pa.string()),
        ("status", pa.string()),  # ok | quarantined
        ("reason", pa.string()),  # machine-readable quarantine reason, null when ok
        ("detail", pa.string()),
        ("caption", pa.string()),
        ("identity", pa.string()),
        ("source", pa.string()),
        ("segments_json", pa.string()),  # sidecar per-segment captions, JSON list or null
        ("attributes_json", pa.string()),  # sidecar person attributes, JSON object or null
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("codec", pa.string()),
        ("frame_count", pa.int64()),
        ("rotation", pa.int32()),
        ("container", pa.string()),
        ("size_bytes", pa.int64()),
    ]
)

SCENE_CUTS = pa.schema(
    [
        ("video_id", pa.string()),
        ("n_frames", pa.int64()),
        ("fps", pa.float64()),
        ("cuts_pyscenedetect", pa.list_(pa.int64())),
        ("cuts_similarity", pa.list_(pa.int64())),
        ("cuts_final", pa.list_(pa.int64())),
        ("min_adjacent_similarity", pa.float64()),
        ("similarity_backend", pa.string()),
        ("shot_backend", pa.string()),
        # gradual transitions of the selected backend: frames [start, end) left out of every clip
        ("transitions", pa.list_(pa.struct([("start_frame", pa.int64()), ("end_frame", pa.int64()), ("reason", pa.string())]))),
        # every backend that ran over the same frames (scene_clips.compare_backends), for the report
        ("backends", pa.list_(pa.struct([
            ("backend", pa.string()), ("cuts", pa.list_(pa.int64())),
            ("transitions", pa.list_(pa.list_(pa.int64()))), ("seconds", pa.float64()),
        ]))),
    ]
)

SCENE_CLIPS = pa.schema(
    [
        ("clip_id", pa.string()),
        ("video_id", pa.string()),
        ("shard", pa.string()),
        ("scene_index", pa.int32()),
        ("start_frame", pa.int64()),
        ("end_frame", pa.int64()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("kept", pa.bool_()),
        ("drop_reason", pa.string()),
        ("clip_key", pa.string()),
        ("caption", pa.string()),
        ("identity", pa.string()),
    ]
)

CLIP_QUALITY = pa.schema(
    [
        ("clip_id", pa.string()),
        ("frames_analysed", pa.int32()),
        ("decode_passes", pa.int32()),
        ("motion_foreground", pa.float64()),
        ("motion_camera", pa.float64()),
        ("foreground_fraction", pa.float64()),
        ("motion_backend", pa.string()),
        ("text_frames_scanned", pa.int32()),
        ("text_frames_flagged", pa.int32()),
        ("has_text", pa.bool_()),
        ("text_boxes", pa.list_(pa.list_(pa.int32()))),
        ("ocr_texts", pa.list_(pa.string())),
        ("ocr_backend", pa.string()),
        ("crop", pa.list_(pa.int32())),  # x, y, w, h of the largest text-free area
        ("text_free_area", pa.float64()),
        ("sharpness", pa.float64()),
        ("brightness", pa.float64()),
        ("clipped", pa.float64()),
        ("noise", pa.float64()),
        ("blockiness", pa.float64()),
        ("technical_backend", pa.string()),
        ("aesthetic", pa.float64()),  # null when not computed
        ("aesthetic_backend", pa.string()),
        ("analysis_seconds", pa.float64()),
    ]
)

CURATED_CLIPS = pa.schema(
    [
        ("clip_id", pa.string()),
        ("video_id", pa.string()),
        ("shard", pa.string()),
        ("kept", pa.bool_()),
        ("reasons", pa.list_(pa.string())),
        ("clip_key", pa.string()),
        ("cropped", pa.bool_()),
        ("crop", pa.list_(pa.int32())),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("motion_foreground", pa.float64()),
        ("has_text", pa.bool_()),
        ("sharpness", pa.float64()),
        ("aesthetic", pa.float64()),
        ("caption", pa.string()),
        ("identity", pa.string()),
    ]
)
