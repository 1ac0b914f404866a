"""Pretrained annotation backends: the models the paper names, loaded with ``from_pretrained``.

Each backend takes a hub id or a local directory and exposes ``name`` (e.g.
``"pretrained:qwen2.5-vl(Qwen/Qwen2.5-VL-7B-Instruct)"``) so that every table says which
backend produced a value. Modules import torch / transformers / onnxruntime inside their
constructors, so importing this package stays cheap:

- ``captioner``: Qwen2.5-VL subject-centric captions, DH-FaceVid attributes, fine labels;
- ``grounding``: Florence-2 caption-to-phrase grounding (boxes for an entity label);
- ``verification``: SigLIP label-crop post-verification;
- ``segmentation``: SAM2.1 box-prompted masks and morphological refinement;
- ``faces``: InsightFace model packs (SCRFD detector + ArcFace recogniser) through ONNX Runtime;
- ``timeline``: Qwen2.5-VL timeline proposals, CLIP video-text alignment, candidate selection.
"""
