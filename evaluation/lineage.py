"""Where a video, a model, a training sample or a clip came from, from what the platform recorded.

`reactid lineage TARGET` walks back through the object store, on any backend, without lakeFS:

    submission_video -> generated_video -> benchmark_sample (prompt, reference images
                                             -> the held-out annotation, clip and raw video they were cut from)
                     -> model -> phase | ablation (checkpoint, params, code versions, sampler)
                                   -> the previous phase it continued from
                                   -> sample (D_overall, quartile, phase, times drawn, steps)
                                        -> annotation -> clip (preview) -> raw_video (source, time span)
                                                                          -> lakefs_commit (when lakeFS is on)

Every node is typed; `Lineage.to_dict()` is the `--json` document and `Lineage.text()` the
human-readable tree. A training run's draws come from its compact record
(`training.draws`), so a phase of hundreds of thousands of draws is read as two small Parquet
files; `limit` bounds how many samples are listed (the most drawn first), the totals are always
given.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from core import layout
from core.stage import AGGREGATE, marker_key
from core.storage import ObjectStore
from core.tables import read_json, read_table
from evaluation.lineage_graph import Lineage, LineageError, Node


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Tables:
    """Per-shard tables read once."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._cache: dict[str, dict[str, Any]] = {}

    def rows(self, stage: str, shard: str, key_column: str = "clip_id") -> dict[str, dict[str, Any]]:
        key = layout.table(stage, shard)
        if key not in self._cache:
            rows = read_table(self.store, key).to_pylist() if self.store.exists(key) else []
            self._cache[key] = {r[key_column]: r for r in rows}
        return self._cache[key]

    def annotation(self, key: str, entity_id: str) -> dict[str, Any] | None:
        if key not in self._cache:
            rows = read_table(self.store, key).to_pylist() if self.store.exists(key) else []
            self._cache[key] = {r["entity_id"]: r for r in rows}
        return self._cache[key].get(entity_id)

    def shards(self) -> list[str]:
        return sorted(PurePosixPath(k).stem for k in self.store.list(layout.tables_prefix("curated_clips")) if k.endswith(".parquet"))


class LineageWalker:
    """Resolves a target and walks its lineage in one store.

    Args:
        store: the object store the platform wrote.
        limit: samples listed per training run (the most drawn first).
        lakefs: include the lakeFS commit recorded with each shard's quality-gate verdict.
    """

    def __init__(self, store: ObjectStore, *, limit: int = 20, lakefs: bool = True) -> None:
        self.store, self.limit, self.lakefs = store, limit, lakefs
        self.tables = _Tables(store)
        self.graph: Lineage | None = None

    # ------------------------------------------------------------ targets

    def lineage(self, target: str) -> Lineage:
        """The lineage of a submission video (`FILE` or `ZIP::member`), a model, a sample id or a clip id.

        Raises:
            LineageError: the target matches nothing recorded (naming what was tried).
        """
        from models.registry import registered_models

        self.graph = Lineage(target)
        if "::" in target:
            archive, member = target.rsplit("::", 1)
            self._archive_member(archive, member)
        elif target.lower().endswith(".mp4") and (Path(target).is_file() or self._in_store(target)):
            self._video_file(target)
        elif target in registered_models(self.store):
            self._model(target, None, "")
        elif (sample := self._find_sample(target)) is not None:
            self._sample_alone(target, sample)
        elif (shard := self._find_clip(target)) is not None:
            self._clip(shard, target, None, "")
        else:
            raise LineageError(
                f"{target!r} is not a submission video (FILE.mp4 or ZIP::member), a registered model "
                f"({', '.join(registered_models(self.store)) or 'none registered'}), a training sample id or a "
                f"clip id of any shard ({', '.join(self.tables.shards()) or 'no curated shard'})")
        return self.graph

    def _archive_member(self, archive: str, member: str) -> None:
        data = self._read_file(archive)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                video = zf.read(member)
        except KeyError as exc:
            raise LineageError(f"{archive} has no member {member!r}") from exc
        except zipfile.BadZipFile as exc:
            raise LineageError(f"{archive} is not a zip archive: {exc}") from exc
        packaged = self._packaged_archive(_sha256(data))
        node = Node(f"{archive}::{member}", "submission_video", f"{archive}::{member} (sha256 {_sha256(video)[:12]})",
                    {"archive": archive, "member": member, "sha256": _sha256(video), "bytes": len(video)})
        if packaged is not None:
            node.attrs.update({k: packaged[k] for k in ("track", "layout", "run", "model", "primary", "key")})
            node.summary += f", IPVG Track {packaged['track']} run {packaged['run']} ({packaged['layout']} layout)"
        root = self.graph.add(node)
        self._generated_video(_sha256(video), root, packaged, member)

    def _in_store(self, location: str) -> bool:
        return self.store.exists(location.removeprefix(self.store.root_uri.rstrip("/") + "/"))

    def _video_file(self, path: str) -> None:
        data = self._read_file(path)
        digest = _sha256(data)
        root = self.graph.add(Node(path, "submission_video", f"{path} (sha256 {digest[:12]})",
                                   {"path": path, "sha256": digest, "bytes": len(data)}))
        self._generated_video(digest, root, None, None)

    def _read_file(self, location: str) -> bytes:
        """A local file, a store key, or a store URI (s3://bucket/prefix/key as `make demo` prints it)."""
        if Path(location).is_file():
            return Path(location).read_bytes()
        key = location.removeprefix(self.store.root_uri.rstrip("/") + "/")
        if self.store.exists(key):
            return self.store.get_bytes(key)
        raise LineageError(f"{location} is neither a file nor a key of the store {self.store.root_uri}")

    def _packaged_archive(self, archive_sha: str) -> dict[str, Any] | None:
        """The archive ipvg_submission packaged with this digest (track, run, model, key)."""
        from evaluation.ipvg_runs import PREFIX

        models = {}
        marker = marker_key("ipvg_submission", AGGREGATE)
        if self.store.exists(marker):
            for a in read_json(self.store, marker).get("metadata", {}).get("preview", []):
                models[a["key"]] = a
        for key in self.store.list(PREFIX):
            if not key.endswith("/manifest.json"):
                continue
            manifest = read_json(self.store, key)
            for run in manifest.get("runs", []):
                if run.get("sha256") == archive_sha:
                    archive_key = f"{key.rsplit('/', 1)[0]}/{run['archive']}"
                    known = models.get(archive_key, {})
                    return {"track": manifest.get("track"), "layout": manifest.get("layout"), "run": run["name"],
                            "model": known.get("model"), "primary": run.get("primary"), "key": archive_key}
        return None

    def _generated_video(self, digest: str, parent: str, packaged: dict[str, Any] | None, member: str | None) -> None:
        """Find the benchmark video with these bytes (the submission copies them verbatim)."""
        candidates = list(self._video_keys(packaged, member))
        for key in candidates:
            if _sha256(self.store.get_bytes(key)) == digest:
                _, benchmark, model, name = key.split("/")
                sample_id = name.removesuffix(".mp4")
                vid = self.graph.add(Node(key, "generated_video", f"{key} (benchmark {benchmark}, model {model})",
                                          {"key": key, "benchmark": benchmark, "model": model,
                                           "sample_id": sample_id}), parent, "same bytes as")
                self._benchmark_sample(benchmark, sample_id, vid)
                self._model(model, vid, "generated by")
                return
        raise LineageError(f"no benchmark video in {self.store.uri(layout.VIDEOS)} has the bytes of this video "
                           f"(sha256 {digest[:12]}; {len(candidates)} compared)")

    def _video_keys(self, packaged: dict[str, Any] | None, member: str | None) -> Iterator[str]:
        from evaluation.demo_benchmarks import IPVG_TRACKS

        if packaged and packaged.get("model") and member:
            benchmark = {t: b for b, t in IPVG_TRACKS.items()}.get(packaged["track"])
            stem = PurePosixPath(member).stem
            if benchmark and packaged["layout"] == "published":
                yield layout.join(layout.benchmark_videos(benchmark, packaged["model"]), f"{stem}.mp4")
        yield from (k for k in self.store.list(layout.VIDEOS) if k.endswith(".mp4"))

    # ------------------------------------------------------------ benchmark

    def _benchmark_sample(self, benchmark: str, sample_id: str, parent: str) -> None:
        from evaluation.generation import benchmark_requests

        request = next((r for r in benchmark_requests(self.store, benchmark) if r.sample_id == sample_id), None)
        if request is None:
            self.graph.add(Node(f"{benchmark}/{sample_id}", "benchmark_sample",
                                f"{benchmark}/{sample_id} (no longer in the benchmark file)"), parent, "prompted by")
            return
        node = self.graph.add(Node(
            f"{benchmark}/{sample_id}", "benchmark_sample",
            f"{benchmark}/{sample_id}: \"{request.prompt}\" ({len(request.reference_keys)} reference image(s))",
            {"benchmark": benchmark, "sample_id": sample_id, "prompt": request.prompt,
             "reference_images": list(request.reference_keys), "subjects": list(request.subjects),
             "timeline": [{"start": e.start, "end": e.end, "description": e.description}
                          for e in request.timeline.events] if request.timeline else None}), parent, "prompted by")
        for key in request.reference_keys:
            ref = self.graph.add(Node(key, "reference_image", key, {"key": key}), node, "reference")
            match = re.search(r"/([^/]+)_f(\d+)\.png$", key)  # images/<label>/<identity>/<entity_id>_f<frame>.png
            if match:
                entity_id, frame = match.group(1), int(match.group(2))
                located = self._entity_annotation(entity_id)
                if located:
                    shard, annotation_key = located
                    self._annotation(annotation_key, entity_id, shard, ref, f"cropped at frame {frame} from")

    def _entity_annotation(self, entity_id: str) -> tuple[str, str] | None:
        for shard in self.tables.shards():
            key = layout.table("annotations", shard)
            if self.tables.annotation(key, entity_id) is not None:
                return shard, key
        return None

    # ------------------------------------------------------------ models and runs

    def _model(self, name: str, parent: str | None, relation: str) -> None:
        from models.registry import read_record

        record = read_record(self.store, name)
        run_key = record.training_run or self._run_of_model(name)
        node = self.graph.add(Node(
            f"model:{name}", "model",
            f"{name} ({record.kind}, {record.variant}, step {record.global_step}): {record.description}",
            {"name": name, "kind": record.kind, "variant": record.variant, "preset": record.preset,
             "phase": record.phase, "global_step": record.global_step, "export_sha256": record.export_sha256,
             "training_run": run_key}), parent, relation)
        if run_key:
            self._run(run_key, node, "trained by")

    def _run_of_model(self, name: str) -> str | None:
        """The run folder of the training stage that registered `name` (its marker's metadata)."""
        for key in self.store.list(layout.METRICS):
            parts = key.split("/")
            if len(parts) == 3 and (parts[1].startswith("curriculum_phase_") or parts[1] == "ablation_runs"):
                meta = read_json(self.store, key).get("metadata", {})
                if meta.get("registered_model") == name:
                    return meta.get("run_dir")
        return None

    def _run(self, run_key: str, parent: str, relation: str) -> None:
        from training.draws import PROVENANCE, read_draws

        provenance_key = f"{run_key}/{PROVENANCE}"
        if not self.store.exists(provenance_key):
            self.graph.add(Node(run_key, "training_run", f"{run_key} (recorded no provenance or draws)",
                                {"run_dir": run_key}), parent, relation)
            return
        prov = read_json(self.store, provenance_key)
        sampler = prov.get("sampler", {})
        stage = prov["stage"]
        kind = "ablation" if stage == "ablation_runs" else "phase"
        meta = self._stage_metadata(stage, prov.get("shard", AGGREGATE), run_key)
        checkpoint = meta.get("checkpoint_dir") or f"{run_key}/checkpoints"
        tag = f"step_{meta['global_step']:08d}" if meta.get("global_step") is not None else None
        what = (f"ablation {sampler.get('variant')}" if kind == "ablation"
                else f"{stage} (steps {sampler.get('start_step')}-{sampler.get('end_step')}, "
                     f"tau {_round(sampler.get('tau'))})")
        draws = read_draws(self.store, run_key)
        counts = draws.counts()
        drawn = np.flatnonzero(counts)
        node = self.graph.add(Node(
            run_key, kind,
            f"{what}: run {run_key}, checkpoint {checkpoint}{'/' + tag if tag else ''}, sampler seed "
            f"{sampler.get('seed')}; drew {int(counts.sum())} samples ({len(drawn)} distinct)",
            {"stage": stage, "run_dir": run_key, "checkpoint": checkpoint, "checkpoint_tag": tag,
             "params": prov.get("params"), "code_versions": prov.get("code_versions"), "sampler": sampler,
             "upstream_fingerprints": prov.get("upstream"), "steps": len(draws.steps),
             "samples_drawn": int(counts.sum()), "distinct_samples": int(len(drawn)),
             "samples_listed": int(min(len(drawn), self.limit)), "draws_key": f"{run_key}/sample_draws.parquet"}),
            parent, relation)
        previous = sampler.get("start_checkpoint")
        if previous:
            self._run(previous.rsplit("/checkpoints", 1)[0], node, "continued from")
        order = drawn[np.lexsort((drawn, -counts[drawn]))][: self.limit]
        taus = self._taus()
        table = draws.table.to_pylist()
        for index in order.tolist():
            row = table[index]
            steps = draws.steps_of(index)
            self._sample_node(row, node, "drew", {
                "times_drawn": int(counts[index]), "steps": steps[:10].tolist(), "steps_total": int(len(steps))},
                taus)

    def _stage_metadata(self, stage: str, shard: str, run_key: str) -> dict[str, Any]:
        key = marker_key(stage, shard)
        if self.store.exists(key):
            meta = read_json(self.store, key).get("metadata", {})
            if meta.get("run_dir") == run_key:
                return meta
        return {}

    def _taus(self) -> list[float]:
        from training.stages import SCHEDULE_KEY

        if not self.store.exists(SCHEDULE_KEY):
            return []
        return [p["tau"] for p in read_json(self.store, SCHEDULE_KEY)["phases"]]

    # ------------------------------------------------------------ samples, clips, raw videos

    def _sample_node(self, row: dict[str, Any], parent: str | None, relation: str, extra: dict[str, Any],
                     taus: list[float]) -> str:
        d = row.get("d_overall")
        phase = next((k for k, tau in enumerate(taus, start=1) if d is not None and d <= tau + 1e-12), None)
        drawn = f", drawn {extra['times_drawn']}x at steps {extra['steps']}" if "times_drawn" in extra else ""
        node = self.graph.add(Node(
            row["sample_id"], "sample",
            f"{row['sample_id']} D_overall {d:.4f} (quartile {phase}, phase {phase}){drawn}" if d is not None
            else f"{row['sample_id']} (not scored){drawn}",
            {"sample_id": row["sample_id"], "d_overall": d, "quartile": phase, "phase": phase,
             "inter_clip": bool(row.get("is_inter")) if row.get("is_inter") is not None else None,
             "shard": row.get("shard"), "clip_id": row.get("clip_id"), **extra}), parent, relation)
        if row.get("annotation_key"):
            self._annotation(row["annotation_key"], row["entity_id"], row["shard"], node, "annotation")
        if row.get("reference_clip_id") and row.get("reference_clip_id") != row.get("clip_id"):
            self._clip(row["reference_shard"], row["reference_clip_id"], node, "reference images from")
        return node

    def _find_sample(self, sample_id: str) -> dict[str, Any] | None:
        key = layout.table("training_samples", AGGREGATE)
        if ":" not in sample_id or not self.store.exists(key):
            return None
        return self.tables.rows("training_samples", AGGREGATE, "sample_id").get(sample_id)

    def _sample_alone(self, sample_id: str, row: dict[str, Any]) -> None:
        from training.draws import read_draws

        scores = self.tables.rows("difficulty_scores", AGGREGATE, "sample_id").get(sample_id) or {}
        node = self._sample_node({**row, "d_overall": scores.get("d_overall"),
                                  "is_inter": row.get("d_sam") == 1}, None, "", {}, self._taus())
        for run_key, stage in self._runs():
            draws = read_draws(self.store, run_key)
            hits = np.flatnonzero(draws.sample_ids == sample_id)
            if len(hits):
                steps = draws.steps_of(int(hits[0]))
                self.graph.add(Node(run_key, "ablation" if stage == "ablation_runs" else "phase",
                                    f"{stage}: run {run_key} drew it {len(steps)}x at steps {steps[:10].tolist()}",
                                    {"stage": stage, "run_dir": run_key, "steps": steps[:10].tolist(),
                                     "times_drawn": int((draws.indices == hits[0]).sum())}), node, "drawn by")

    def _runs(self) -> Iterator[tuple[str, str]]:
        """(run folder, stage) of every training run with a recorded provenance."""
        for key in self.store.list(layout.TRAINING):
            if key.endswith("/provenance.json"):
                yield key.rsplit("/", 1)[0], read_json(self.store, key)["stage"]

    def _annotation(self, annotation_key: str, entity_id: str, shard: str, parent: str, relation: str) -> None:
        row = self.tables.annotation(annotation_key, entity_id)
        if row is None:
            self.graph.add(Node(f"{annotation_key}#{entity_id}", "annotation",
                                f"{annotation_key}#{entity_id} (no longer in the table)"), parent, relation)
            return
        events = row.get("events") or []
        node = self.graph.add(Node(
            f"{annotation_key}#{entity_id}", "annotation",
            f"{entity_id}: {row.get('fine_label') or row.get('label')} in \"{row.get('caption')}\", "
            f"{len(row.get('frame_indices') or [])} boxed frames, {len(row.get('face_boxes') or [])} face boxes, "
            f"{len(events)} sub-action(s)",
            {"table": annotation_key, "entity_id": entity_id, "label": row.get("label"),
             "fine_label": row.get("fine_label"), "caption": row.get("caption"), "identity": row.get("identity"),
             "sub_actions": [e["description"] for e in events], "backends": json.loads(row.get("backends") or "{}")}),
            parent, relation)
        self._clip(shard, row["clip_id"], node, "of clip", clip_key=row.get("clip_key"))

    def _find_clip(self, clip_id: str) -> str | None:
        for shard in self.tables.shards():
            if clip_id in self.tables.rows("curated_clips", shard):
                return shard
        return None

    def _clip(self, shard: str, clip_id: str, parent: str | None, relation: str, clip_key: str | None = None) -> None:
        from curation.previews import preview_key

        curated = self.tables.rows("curated_clips", shard).get(clip_id, {})
        scene = self.tables.rows("scene_clips", shard).get(clip_id, {})
        preview = preview_key(shard, clip_id)
        clip_key = curated.get("clip_key") or scene.get("clip_key") or clip_key
        where = clip_key
        if not clip_key and scene.get("source_path"):  # never written (rejected): a span of its source
            where = f"not written: frames [{scene['start_frame']}, {scene['end_frame']}) of {scene['source_path']}"
        status = "kept" if curated.get("kept") else f"rejected: {', '.join(curated.get('reasons') or [])}" \
            if curated else "not in curated_clips"
        node = self.graph.add(Node(
            f"clip:{clip_id}", "clip",
            f"{clip_id} [{shard}] ({status}) {where}"
            + (f", preview {preview}" if self.store.exists(preview) else ""),
            {"clip_id": clip_id, "shard": shard, "clip_key": clip_key,
             "kept": curated.get("kept"), "reasons": curated.get("reasons"), "cropped": curated.get("cropped"),
             "preview": preview if self.store.exists(preview) else None}), parent, relation)
        if scene:
            self._raw_video(shard, scene, node)
        if self.lakefs:
            self._lakefs_commit(shard, node)

    def _raw_video(self, shard: str, scene: dict[str, Any], parent: str) -> None:
        raw = self.tables.rows("raw_videos", shard, "video_id").get(scene["video_id"], {})
        span = f"{scene['start_s']:.2f}-{scene['end_s']:.2f} s (frames {scene['start_frame']}-{scene['end_frame']})"
        self.graph.add(Node(
            f"raw:{shard}/{scene['video_id']}", "raw_video",
            f"{scene['video_id']} {raw.get('source_path')} ({raw.get('duration_s')} s, {raw.get('width')}x"
            f"{raw.get('height')} {raw.get('codec')})",
            {"video_id": scene["video_id"], "shard": shard, "source_path": raw.get("source_path"),
             "source": raw.get("source"), "identity": raw.get("identity"), "duration_s": raw.get("duration_s")}),
            parent, f"cut at {span} from")

    def _lakefs_commit(self, shard: str, parent: str) -> None:
        key = marker_key("quality_gates", shard)
        if not self.store.exists(key):
            return
        record = read_json(self.store, key).get("lakefs")
        if record and record.get("commit_id"):
            self.graph.add(Node(
                f"lakefs:{record['commit_id']}", "lakefs_commit",
                f"{record.get('repository')}@{record.get('branch')} commit {record['commit_id']} (shard {shard})",
                dict(record)), parent, "versioned in")


def lineage(store: ObjectStore, target: str, *, limit: int = 20, lakefs: bool = True) -> Lineage:
    """`LineageWalker(store, limit=limit, lakefs=lakefs).lineage(target)`."""
    return LineageWalker(store, limit=limit, lakefs=lakefs).lineage(target)


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
