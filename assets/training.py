"""Training assets: the latent cache, one asset per curriculum phase (as many as params.yaml's
`curriculum.phase_ratios`) and the ablation matrix (generated: assets/stage_assets.py).

training_samples, difficulty_scores -> latent_cache -> curriculum_phase_1 -> ... -> curriculum_phase_<P>
                  curriculum_schedule ─┘ (every phase reads its slice of the schedule)
latent_cache, difficulty_scores -> ablation_runs[<variant>]

Every exported model is registered for evaluation and becomes a "models" partition.
"""

from assets.partitions import ablation_partitions
from assets.stage_assets import ABLATION_GROUP, STAGE_ASSETS, TRAINING_GROUP
from training.run_stages import phase_number

__all__ = ["ABLATION_ASSETS", "ABLATION_GROUP", "CURRICULUM_PHASE_ASSETS", "TRAINING_ASSETS", "TRAINING_GROUP",
           "ablation_partitions"]

CURRICULUM_PHASE_ASSETS = [asset for name, asset in STAGE_ASSETS.items() if phase_number(name) is not None]
TRAINING_ASSETS = [STAGE_ASSETS["latent_cache"], *CURRICULUM_PHASE_ASSETS]
ABLATION_ASSETS = [STAGE_ASSETS["ablation_runs"]]

