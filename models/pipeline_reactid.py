"""ReactIDPipeline: reference images + timeline (or prompt) to an H.264 video.

Sampling follows Wan's T2V pipeline (flow-matching scheduler, classifier-free guidance;
paper Sec. 4.1: 50 steps, scale 5.0). The conditional pass sees the prompt, the timeline
and the references; the unconditional pass sees the negative prompt and the references,
so guidance pushes towards the text and the timeline while identity comes from both.

Long videos (paper App. E.6) are generated segment by segment: segment ``s`` sees the
part of the timeline inside its time window, and its first ``segment_overlap`` latent
frames are held to the previous segment's last latent frames (re-noised to the current
noise level at every step, exact at the end), so each segment continues the previous one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

from core.timeline import Timeline
from models.pipeline_inputs import resolve_subjects, resolve_timeline, segment_windows
from models.reference_images import letterbox_reference
from models.text_encoder import encode_texts
from models.timeline_conditioning import encode_timeline_batch, timeline_batch
from models.video_export import write_h264_mp4


@dataclass
class ReactIDPipelineOutput(BaseOutput):
    """Args:
    frames: ``(1, F, H, W, 3)`` float in ``[0, 1]`` (``output_type="np"``) or the latents
        ``(1, C, F', h, w)`` (``"latent"``).
    video_path: the MP4 written, if ``output_path`` was given.
    subject_mask_logits: per segment, the last step's ``(1, K, F', H', W')`` logits, or None.
    """

    frames: np.ndarray | torch.Tensor
    video_path: str | None = None
    subject_mask_logits: list[torch.Tensor] | None = None


class ReactIDPipeline(DiffusionPipeline):
    """Timeline- and reference-conditioned video generation with a ReactID transformer.

    Args:
        tokenizer, text_encoder: UMT5 tokenizer and encoder (Wan's, or the tiny offline ones).
        vae: ``AutoencoderKLWan``.
        transformer: ``ReactIDTransformer3DModel``.
        scheduler: a flow-matching scheduler (``FlowMatchEulerDiscreteScheduler``, UniPC).
        fps: frame rate of the generated video.
        max_sequence_length: prompt tokens.
        max_action_tokens: tokens per sub-action description.
        height, width, num_frames: default geometry of one segment.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: Any,
        vae: Any,
        transformer: Any,
        scheduler: Any,
        fps: float = 16.0,
        max_sequence_length: int = 512,
        max_action_tokens: int = 64,
        height: int = 480,
        width: int = 832,
        num_frames: int = 81,
    ) -> None:
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            vae=vae,
            transformer=transformer,
            scheduler=scheduler,
        )
        self.register_to_config(
            fps=fps,
            max_sequence_length=max_sequence_length,
            max_action_tokens=max_action_tokens,
            height=height,
            width=width,
            num_frames=num_frames,
        )
        self.vae_scale_factor_temporal = vae.config.scale_factor_temporal
        self.vae_scale_factor_spatial = vae.config.scale_factor_spatial
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)

    # ----------------------------------------------------------------------------------
    # Conditioning
    # ----------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """``(1, L, C)`` prompt embeddings in the transformer's dtype."""
        embeds, _ = encode_texts(
            self.tokenizer,
            self.text_encoder,
            [prompt],
            self.config.max_sequence_length,
            device=self._execution_device,
        )
        return embeds.to(self.transformer.dtype)

    @torch.no_grad()
    def encode_reference_images(
        self, images: Sequence[Any], height: int, width: int
    ) -> torch.Tensor:
        """Letterbox each reference to ``height x width`` and encode it.

        Returns:
            ``(1, K, C, h, w)`` normalised latents (Wan's ``(z - mean) / std``).
        """
        pixels = torch.stack(
            [letterbox_reference(image, height, width) for image in images]
        )  # (K, 3, H, W)
        pixels = pixels.unsqueeze(2).to(self._execution_device, self.vae.dtype)  # (K, 3, 1, H, W)
        latents = self.vae.encode(pixels).latent_dist.mode()  # (K, C, 1, h, w)
        mean, std = self._latent_stats(latents)
        return ((latents - mean) / std).squeeze(2).unsqueeze(0).to(self.transformer.dtype)

    def _latent_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, self.vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(
            self.vae.config.latents_mean, device=like.device, dtype=like.dtype
        ).view(shape)
        std = torch.tensor(self.vae.config.latents_std, device=like.device, dtype=like.dtype).view(
            shape
        )
        return mean, std

    def _timeline_kwargs(
        self, timeline: Timeline, subjects: Sequence[str] | None, num_latent_frames: int
    ) -> dict[str, torch.Tensor]:
        """The transformer's timeline kwargs; empty without actions or timeline modules."""
        if not timeline.actions or not self.transformer.config.use_timeline_modules:
            return {}
        batch = timeline_batch([timeline], num_latent_frames, subjects=[subjects])
        kwargs = encode_timeline_batch(
            batch,
            self.tokenizer,
            self.text_encoder,
            self.config.max_action_tokens,
            device=self._execution_device,
        )
        kwargs["timeline_hidden_states"] = kwargs["timeline_hidden_states"].to(
            self.transformer.dtype
        )
        return kwargs

    # ----------------------------------------------------------------------------------
    # Sampling
    # ----------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        reference_images: Sequence[Any] | None = None,
        timeline: Timeline | str | None = None,
        prompt: str | None = None,
        subjects: Sequence[str] | None = None,
        negative_prompt: str = "",
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        num_segments: int = 1,
        segment_overlap: int = 1,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        output_path: str | None = None,
        return_dict: bool = True,
    ) -> ReactIDPipelineOutput | tuple:
        """Generate one video.

        Args:
            reference_images: one image per subject (PIL, ``(H, W, 3)`` array, or
                ``(3, H, W)`` tensor in ``[0, 1]``), or None for text-only generation.
            timeline: a ``Timeline`` or the challenge string ``"0-2s: ...; 2-5s: ..."``.
            prompt: global prompt (used as the timeline's global prompt for a string).
            subjects: subject labels in reference order (default: the timeline's subjects).
            height, width, num_frames: geometry of one segment (default: the pipeline config).
            num_inference_steps, guidance_scale: sampling (paper: 50, 5.0).
            num_segments: auto-regressive segments for long videos (1 = one clip).
            segment_overlap: latent frames each segment shares with the previous one.
            generator: random generator for the initial noise.
            output_type: ``"np"`` or ``"latent"``.
            output_path: write an H.264 MP4 here (``"np"`` only).

        Returns:
            ``ReactIDPipelineOutput``.
        """
        # 1. Inputs
        timeline = resolve_timeline(timeline, prompt)
        references = list(reference_images) if reference_images is not None else []
        subjects = resolve_subjects(timeline, len(references), subjects)
        height, width, num_frames = self._check_geometry(height, width, num_frames)
        if output_type not in ("np", "latent"):
            raise ValueError(f"output_type must be 'np' or 'latent', got {output_type!r}")
        if output_path is not None and output_type != "np":
            raise ValueError("output_path needs output_type='np' (decoded frames)")
        num_latent_frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        windows = segment_windows(
            num_segments,
            num_frames,
            self.config.fps,
            self.vae_scale_factor_temporal,
            segment_overlap,
        )
        do_cfg = guidance_scale > 1.0

        # 2. Fixed conditions: references and the negative prompt
        reference_latents = (
            self.encode_reference_images(references, height, width) if references else None
        )
        negative_embeds = self.encode_prompt(negative_prompt) if do_cfg else None

        # 3. Segments: each sees its window of the timeline and continues the previous one
        pieces, mask_logits, previous = [], [], None
        for start, end in windows:
            window = timeline if num_segments == 1 else timeline.window(start, end)
            latents, logits = self._sample_segment(
                window,
                subjects,
                reference_latents,
                negative_embeds,
                num_latent_frames,
                height,
                width,
                num_inference_steps,
                guidance_scale,
                generator,
                None
                if previous is None or segment_overlap == 0
                else previous[:, :, -segment_overlap:],
            )
            pieces.append(latents if previous is None else latents[:, :, segment_overlap:])
            mask_logits.append(logits)
            previous = latents
        latents = torch.cat(pieces, dim=2)
        masks = None if any(m is None for m in mask_logits) else mask_logits

        # 4. Decode and write
        if output_type == "latent":
            frames, video_path = latents, None
        else:
            frames = self.decode_latents(latents)
            video_path = None
            if output_path is not None:
                video_path = str(write_h264_mp4(frames[0], output_path, self.config.fps))
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames, video_path, masks)
        return ReactIDPipelineOutput(
            frames=frames, video_path=video_path, subject_mask_logits=masks
        )

    def _sample_segment(
        self,
        timeline: Timeline,
        subjects: Sequence[str] | None,
        reference_latents: torch.Tensor | None,
        negative_embeds: torch.Tensor | None,
        num_latent_frames: int,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        generator: torch.Generator | None,
        condition: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Denoise one segment; returns latents ``(1, C, F, h, w)`` and the last mask logits."""
        # 1. Prompt and timeline of this segment; a model without timeline modules reads
        #    the timeline folded into its prompt (the paper's "Base" with timeline data)
        device = self._execution_device
        if self.transformer.config.use_timeline_modules:
            prompt_embeds = self.encode_prompt(timeline.global_prompt)
        else:
            prompt_embeds = self.encode_prompt(timeline.as_prompt())
        timeline_kwargs = self._timeline_kwargs(timeline, subjects, num_latent_frames)

        # 2. Initial noise (1, C, F, h, w); noise for the held frames is drawn once
        shape = (
            1,
            self.transformer.config.in_channels,
            num_latent_frames,
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )
        latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        condition_noise = None
        if condition is not None:
            condition = condition.float()
            condition_noise = randn_tensor(
                condition.shape, generator=generator, device=device, dtype=torch.float32
            )

        # 3. Denoising loop with classifier-free guidance
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        logits = None
        dtype = self.transformer.dtype
        for index, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            if condition is not None:
                sigma = float(self.scheduler.sigmas[index])
                latents[:, :, : condition.shape[2]] = (
                    1 - sigma
                ) * condition + sigma * condition_noise
            timestep = t.expand(1).to(device)
            output = self.transformer(
                hidden_states=latents.to(dtype),
                timestep=timestep,
                encoder_hidden_states=prompt_embeds,
                reference_latents=reference_latents,
                **timeline_kwargs,
            )
            noise_pred, logits = output.sample.float(), output.subject_mask_logits
            if negative_embeds is not None:
                uncond = self.transformer(
                    hidden_states=latents.to(dtype),
                    timestep=timestep,
                    encoder_hidden_states=negative_embeds,
                    reference_latents=reference_latents,
                ).sample.float()
                noise_pred = uncond + guidance_scale * (noise_pred - uncond)
            latents = self.scheduler.step(noise_pred, t, latents, return_dict=False)[0]
        if condition is not None:
            latents[:, :, : condition.shape[2]] = condition
        return latents, logits

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """Normalised latents ``(1, C, F, h, w)`` to frames ``(1, F, H, W, 3)`` in ``[0, 1]``."""
        latents = latents.to(self.vae.dtype)
        mean, std = self._latent_stats(latents)
        video = self.vae.decode(latents * std + mean, return_dict=False)[0]
        return self.video_processor.postprocess_video(video, output_type="np")

    def _check_geometry(
        self, height: int | None, width: int | None, num_frames: int | None
    ) -> tuple[int, int, int]:
        height = self.config.height if height is None else height
        width = self.config.width if width is None else width
        num_frames = self.config.num_frames if num_frames is None else num_frames
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        if height % multiple or width % multiple:
            raise ValueError(
                f"height and width must be multiples of {multiple}, got {height}x{width}"
            )
        if (num_frames - 1) % self.vae_scale_factor_temporal:
            raise ValueError(
                f"num_frames - 1 must be a multiple of {self.vae_scale_factor_temporal}, "
                f"got {num_frames}"
            )
        return height, width, num_frames
