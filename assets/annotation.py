"""Annotation assets, one per stage, partitioned by shard (paper Sec. 3.1, App. B.2).

curated_clips -> captions -> entities -> subjects -> faces / timelines -> annotations
                                      \\-> attributes
annotations, timelines, curated_clips -> clip_previews (annotated previews, contact sheet)
"""

from assets.curation import stage_asset

ANNOTATION_GROUP = "annotation"

captions = stage_asset("captions", None, ANNOTATION_GROUP, {"parquet"})
entities = stage_asset("entities", None, ANNOTATION_GROUP, {"spacy", "parquet"})
subjects = stage_asset("subjects", None, ANNOTATION_GROUP, {"opencv", "parquet"})
faces = stage_asset("faces", None, ANNOTATION_GROUP, {"dlib", "parquet"})
attributes = stage_asset("attributes", None, ANNOTATION_GROUP, {"parquet"})
timelines = stage_asset("timelines", None, ANNOTATION_GROUP, {"parquet"})
annotations = stage_asset("annotations", None, ANNOTATION_GROUP, {"parquet"})
clip_previews = stage_asset("clip_previews", None, ANNOTATION_GROUP, {"pyav", "opencv", "png"})

ANNOTATION_ASSETS = [captions, entities, subjects, faces, attributes, timelines, annotations, clip_previews]
