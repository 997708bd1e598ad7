"""The math core: the paper's equations (Appendix B, eqs. 3-8) as TensorFlow functions,
Table 3's local self-attention baseline (`local_attention`) and SAN's pairwise and
patchwise self-attention (Zhao et al. 2020; `san_attention`).

Keras-free; the layers in `gsa_keras.layers` are thin shells around these.
"""

from gsa_keras.ops.attention import AXES
from gsa_keras.ops.attention import QUERY_NORMALIZATIONS
from gsa_keras.ops.attention import axial_softmax_attention
from gsa_keras.ops.attention import content_attention
from gsa_keras.ops.attention import global_context
from gsa_keras.ops.attention import normalize_queries
from gsa_keras.ops.attention import positional_attention
from gsa_keras.ops.attention import positional_scores
from gsa_keras.ops.attention import project_kqv
from gsa_keras.ops.attention import score_blocks
from gsa_keras.ops.attention import spatial_softmax
from gsa_keras.ops.local_attention import local_attention
from gsa_keras.ops.local_attention import neighbourhood
from gsa_keras.ops.local_attention import relative_logits
from gsa_keras.ops.relative_positions import neighbourhood_mask
from gsa_keras.ops.relative_positions import relative_to_absolute
from gsa_keras.ops.relative_positions import resize_relative_embeddings
from gsa_keras.ops.relative_positions import table_reach
from gsa_keras.ops.san_attention import gather_neighbours
from gsa_keras.ops.san_attention import interleaved_aggregation
from gsa_keras.ops.san_attention import neighbour_softmax
from gsa_keras.ops.san_attention import pairwise_relation
from gsa_keras.ops.san_attention import patchwise_relation
from gsa_keras.ops.san_attention import patchwise_weights
from gsa_keras.ops.san_attention import position_differences
from gsa_keras.ops.san_attention import position_grid
from gsa_keras.ops.san_attention import reflected_neighbourhood

__all__ = [
    "AXES", "QUERY_NORMALIZATIONS", "axial_softmax_attention", "content_attention",
    "global_context", "normalize_queries", "positional_attention", "positional_scores",
    "project_kqv", "score_blocks", "spatial_softmax", "local_attention",
    "neighbourhood", "relative_logits", "neighbourhood_mask", "relative_to_absolute",
    "resize_relative_embeddings", "table_reach", "gather_neighbours",
    "interleaved_aggregation", "neighbour_softmax", "pairwise_relation", "patchwise_relation",
    "patchwise_weights", "position_differences", "position_grid", "reflected_neighbourhood"]
