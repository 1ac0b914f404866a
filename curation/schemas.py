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
        # frame_count and duration_s are what the file holds; these, what its container declares
        ("frames_declared", pa.int64()),  # null when the container declares no count (Matroska)
        ("duration_declared_s", pa.float64()),
        ("complete", pa.bool_()),  # false: the file ends early (used when what is present is long enough)
        ("content_sha256", pa.string()),  # SHA-256 of the file's bytes (null when it could not be probed)
        ("duplicate_of", pa.string()),  # quarantined as a byte-identical copy of this video_id of the shard
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
        # n_frames is the frames decoded; what the container declares, and how decoding went
        ("frames_declared", pa.int64()),
        ("duration_s", pa.float64()),  # from the timestamps: first frame to the end of the last
        ("decode_errors", pa.int32()),  # packets that failed to decode, or a demux error ending the file
        ("first_decode_error", pa.string()),
        ("frames_late", pa.int32()),  # frames whose timestamp came too late to put in order
        ("shot_backend", pa.string()),
        # gradual transitions of the selected backend: frames [start, end) left out of every clip
        ("transitions", pa.list_(pa.struct([("start_frame", pa.int64()), ("end_frame", pa.int64()), ("reason", pa.string())]))),
        # every backend that ran over the same frames (scene_clips.compare_backends), for the report;
        # their run times go to the stage's metadata (a table holds no timing: engines give the same bytes)
        ("backends", pa.list_(pa.struct([
            ("backend", pa.string()), ("cuts", pa.list_(pa.int64())),
            ("transitions", pa.list_(pa.list_(pa.int64()))),
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
        ("caption", pa.string()),
        ("identity", pa.string()),
        # the span in its source, for the stages that read it there (curation/clip_spans.py)
        ("source_path", pa.string()),
        ("start_pts", pa.int64()),
        ("fps_num", pa.int64()),
        ("fps_den", pa.int64()),
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
        # the embedded duplicate signature hashed in the same pass (null with the pretrained
        # backend): clip_signatures reads it; samples x zooms, sample-major
        ("signature_samples", pa.int32()),
        ("signature_hashes", pa.list_(pa.uint64())),
        ("signature_sample_fps", pa.float64()),
        ("signature_width", pa.int32()),
        ("signature_zooms", pa.list_(pa.float64())),
    ]
)

# clip_quality rows made in scene_clips' decode (curation.clip_analysis.SceneQualityPass), with
# the tag of the settings and analyser code they were made with (clip_quality uses a row only
# under its own tag)
SCENE_QUALITY = pa.schema([*CLIP_QUALITY, ("pass_tag", pa.string())])

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
        ("duplicate_of", pa.string()),  # rejected as a copy of this earlier clip (clip_dedup), else null
    ]
)

CLIP_SIGNATURES = pa.schema(
    [
        ("clip_id", pa.string()),
        ("video_id", pa.string()),
        ("shard", pa.string()),
        ("video_sha256", pa.string()),  # the raw video's content hash: same frames of the same bytes = exact copy
        ("start_frame", pa.int64()),
        ("end_frame", pa.int64()),
        ("duration_s", pa.float64()),
        ("sample_fps", pa.float64()),
        ("zooms", pa.list_(pa.float64())),
        ("backend", pa.string()),  # embedded:dct-hash | the pretrained embedder's name
        ("samples", pa.int32()),
        ("hashes", pa.list_(pa.uint64())),  # embedded: samples x zooms, sample-major
        ("embeddings", pa.list_(pa.float32())),  # pretrained: samples x dim, sample-major
        ("dim", pa.int32()),  # embedding size (pretrained), else null
    ]
)

CLIP_DEDUP = pa.schema(
    [
        ("clip_id", pa.string()),
        ("video_id", pa.string()),
        ("shard", pa.string()),
        ("duplicate", pa.string()),  # null | duplicate (same frames of a byte-identical video) | near_duplicate
        ("duplicate_of", pa.string()),  # clip id of the earlier clip it repeats
        ("duplicate_of_shard", pa.string()),
        ("offset_s", pa.float64()),  # where this clip starts in the earlier one (negative: before it)
        ("coverage", pa.float64()),  # share of this clip's samples that match the earlier clip
        ("mean_distance", pa.float64()),  # bits of 64 over the aligned samples
    ]
)
