"""Explicit Parquet schemas of the annotation tables, one row shape per stage.

Boxes are [x0, y0, x1, y1] in pixels of the curated clip; frame indices count frames of
the curated clip from 0; masks are COCO RLE (`{"size": [h, w], "counts": str}`) stored as
JSON strings, as ReactID-Data stores `mask_annotation`.
"""

import pyarrow as pa

BOX = pa.list_(pa.float32())  # [x0, y0, x1, y1]
EVENT = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("description", pa.string()),
                   ("subject", pa.string())])

CAPTIONS = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("caption", pa.string()), ("caption_backend", pa.string()),
    ("word_count", pa.int32()), ("plural_entities", pa.list_(pa.string())),
    ("kept", pa.bool_()), ("drop_reason", pa.string()),
])

ENTITIES = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("entity_id", pa.string()),  # "<clip_id>-e<k>"
    ("label", pa.string()),  # taxonomy term (lemma), e.g. "man"
    ("category", pa.string()),  # living | non_living
    ("is_human", pa.bool_()),
    ("fine_label", pa.string()),  # e.g. "the man in red"
    ("mention", pa.string()),  # the caption span it came from
    ("entity_backend", pa.string()),
])

SUBJECTS = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("entity_id", pa.string()), ("label", pa.string()),
    ("frame_width", pa.int32()), ("frame_height", pa.int32()),
    ("frame_indices", pa.list_(pa.int32())),  # sampled frames with a detection
    ("boxes", pa.list_(BOX)),
    ("scores", pa.list_(pa.float32())),
    ("mask_rles", pa.list_(pa.string())),  # one COCO RLE (JSON) per sampled frame
    ("mask_area_fractions", pa.list_(pa.float32())),  # mask pixels / frame pixels, per frame
    ("verified", pa.bool_()), ("verification_score", pa.float32()),
    ("subject_backend", pa.string()),
])

FACES = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("entity_id", pa.string()),
    ("face_frames_scanned", pa.int32()),  # frames sampled for detection (2 FPS)
    ("face_frame_indices", pa.list_(pa.int32())),  # sampled frames with a kept face
    ("face_boxes", pa.list_(BOX)), ("face_scores", pa.list_(pa.float32())),
    ("representative_frames", pa.list_(pa.int32())),  # up to 5, by confidence
    ("embeddings", pa.list_(pa.list_(pa.float32()))),  # identity embedding per representative frame
    ("face_mask_rles", pa.list_(pa.string())),  # per representative frame
    ("face_resolution", pa.float32()),  # median face box short side, px
    ("face_torso_crop", pa.list_(pa.int32())),  # x, y, w, h covering face and torso over the clip
    ("hands_occluding", pa.bool_()),  # null when no backend computed it
    ("face_backend", pa.string()),
])

ATTRIBUTES = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("entity_id", pa.string()),
    ("ethnicity", pa.string()), ("gender", pa.string()), ("age", pa.string()),
    ("expression", pa.string()), ("attire", pa.string()),
    ("attribute_backend", pa.string()),  # "not computed (...)" when nothing provided them
])

TIMELINES = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("global_caption", pa.string()),
    ("event_count", pa.int32()), ("events", pa.list_(EVENT)), ("timeline_backend", pa.string()),
])

ANNOTATIONS = pa.schema([
    # the clip
    ("clip_id", pa.string()), ("shard", pa.string()), ("clip_key", pa.string()), ("identity", pa.string()),
    ("width", pa.int32()), ("height", pa.int32()), ("fps", pa.float64()), ("duration_s", pa.float64()),
    ("caption", pa.string()), ("word_count", pa.int32()),
    # one subject of the clip (one row per subject entity)
    ("entity_id", pa.string()), ("label", pa.string()), ("category", pa.string()), ("is_human", pa.bool_()),
    ("fine_label", pa.string()),
    ("frame_indices", pa.list_(pa.int32())), ("boxes", pa.list_(BOX)), ("mask_rles", pa.list_(pa.string())),
    ("mask_area_fractions", pa.list_(pa.float32())), ("verified", pa.bool_()),
    ("face_frame_indices", pa.list_(pa.int32())), ("face_boxes", pa.list_(BOX)),
    ("representative_frames", pa.list_(pa.int32())), ("face_embeddings", pa.list_(pa.list_(pa.float32()))),
    ("face_resolution", pa.float32()),
    # the clip's timeline (same for every subject row of the clip; events name their subject)
    ("global_caption", pa.string()), ("events", pa.list_(EVENT)),
    ("backends", pa.string()),  # JSON: stage -> backend that produced it
])
