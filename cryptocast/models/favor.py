"""FAVOR+ attention: softmax attention approximated with positive orthogonal random features.

Transcribed from "Rethinking Attention with Performers" (Choromanski et al., ICLR 2021,
arXiv:2009.14794), following the reference JAX code (google-research/performer,
``fast_attention/jax/fast_attention.py``) and lucidrains/performer-pytorch
(``performer_pytorch/performer_pytorch.py``).

softmax(QKᵀ/√d)V is rewritten as D⁻¹ Q′(K′ᵀV) with D = Q′(K′ᵀ1), where φ(x) = Q′/K′ rows are
positive random features whose inner products are unbiased estimates of exp(qᵀk/√d). Computing
K′ᵀV first makes the cost O(L·m·d) instead of O(L²·d): nothing of size L×L (or L×m×d) exists.

Layout everywhere: (B, H, L, Dh) for q/k/v, (B, H, L, m) for features, projection (m, Dh).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def default_nb_features(dim_heads: int) -> int:
    """About d·ln(d) random features, the paper's recommendation (Theorem 4)."""
    return max(1, int(dim_heads * math.log(max(dim_heads, 2))))


def _orthogonal_block(d: int, generator: torch.Generator | None) -> torch.Tensor:
    """A d×d matrix with orthonormal rows, uniformly (Haar) distributed."""
    g = torch.randn(d, d, generator=generator, dtype=torch.float32)
    q, r = torch.linalg.qr(g, mode="reduced")
    # Sign fix makes the QR factor Haar-distributed rather than biased by the QR convention.
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q.t()  # rows orthonormal


def orthogonal_gaussian_matrix(
    nb_rows: int,
    nb_cols: int,
    scaling: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random projection ω of shape (nb_rows, nb_cols): stacked orthogonal blocks (ORF).

    Orthogonal rows lower the estimator's variance (paper, Section 2.4). Drawn on the CPU in float32
    with ``generator`` (or the global RNG) so a seed gives the same matrix on every device.

    Args:
        nb_rows: number of random features m.
        nb_cols: head dimension d.
        scaling: 0 rescales each row by the norm of an independent Gaussian vector (so rows are
            marginally N(0, I_d)); 1 rescales every row to length √d.
        generator: optional ``torch.Generator`` for reproducible draws.

    Returns:
        Float32 CPU tensor (nb_rows, nb_cols); rows inside each d×d block are orthogonal.
    """
    nb_full_blocks, remaining = divmod(nb_rows, nb_cols)
    blocks = [_orthogonal_block(nb_cols, generator) for _ in range(nb_full_blocks)]
    if remaining:
        blocks.append(_orthogonal_block(nb_cols, generator)[:remaining])
    final = torch.cat(blocks, dim=0)  # (m, d)
    if scaling == 0:
        multiplier = torch.randn(nb_rows, nb_cols, generator=generator).norm(dim=1)
    elif scaling == 1:
        multiplier = torch.full((nb_rows,), math.sqrt(nb_cols))
    else:
        raise ValueError(f"scaling must be 0 or 1, got {scaling}")
    return multiplier.unsqueeze(1) * final


def softmax_kernel(
    x: torch.Tensor, projection: torch.Tensor, is_query: bool, eps: float = 1e-4
) -> torch.Tensor:
    """Positive random features φ(x) = m^-½ (exp(ωᵀx′ − ‖x′‖²/2 − s) + ε), x′ = x·d^-¼.

    The stabiliser s (a max, detached from the gradient) keeps exp from overflowing for inputs with
    large norms; it cancels in D⁻¹ Q′(K′ᵀV) because it is constant per query row (queries) or per
    head (keys). The work runs in float32 even under autocast: exp of bf16 logits loses too much.

    Args:
        x: (B, H, L, d) queries or keys.
        projection: (m, d) random projection ω.
        is_query: stabilise per row (queries) or over keys and features per head (keys).
        eps: added to every feature so denominators stay positive.

    Returns:
        (B, H, L, m) features in ``x``'s dtype.
    """
    orig_dtype = x.dtype
    d = x.shape[-1]
    m = projection.shape[0]
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        # Fold d^-¼ into the (small, m×d) projection instead of the (L×d) input.
        proj = projection.to(torch.float32) * (d**-0.25)
        logits = torch.matmul(x, proj.t())  # (B, H, L, m) = ωᵀx′
        # ‖x′‖²/2 = ‖x‖² / (2√d): (B, H, L, 1)
        diag = x.pow(2).sum(dim=-1, keepdim=True) * (0.5 / math.sqrt(d))
        with torch.no_grad():
            if is_query:
                stab = logits.amax(dim=-1, keepdim=True)  # (B, H, L, 1)
            else:
                stab = logits.amax(dim=(-2, -1), keepdim=True)  # (B, H, 1, 1)
        # m^-½ folded into the exponent: m^-½·exp(z) = exp(z − ½ ln m). One fused pass for exp.
        shift = diag + (stab + 0.5 * math.log(m))
        feats = torch.exp(logits - shift) + eps / math.sqrt(m)
    return feats.to(orig_dtype)


def linear_attention(q_prime: torch.Tensor, k_prime: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Non-causal FAVOR+ output D⁻¹ Q′(K′ᵀV) with D = Q′(K′ᵀ1).

    Args:
        q_prime: (B, H, L, m) query features.
        k_prime: (B, H, S, m) key features.
        v: (B, H, S, dv) values.

    Returns:
        (B, H, L, dv).
    """
    v = v.to(q_prime.dtype)
    # K′ᵀV first: (B, H, m, dv); the transpose is a stride trick that BLAS reads directly.
    context = torch.matmul(k_prime.transpose(-2, -1), v)
    k_sum = k_prime.sum(dim=-2).unsqueeze(-1)  # (B, H, m, 1) = K′ᵀ1
    out = torch.matmul(q_prime, context)  # (B, H, L, dv)
    denom = torch.matmul(q_prime, k_sum)  # (B, H, L, 1) = D
    return out / denom


def favor_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, projection: torch.Tensor, eps: float = 1e-4
) -> torch.Tensor:
    """FAVOR+ approximation of ``scaled_dot_product_attention(q, k, v)`` (B, H, L, d) -> (B, H, L, d)."""
    q_prime = softmax_kernel(q, projection, is_query=True, eps=eps)
    k_prime = softmax_kernel(k, projection, is_query=False, eps=eps)
    return linear_attention(q_prime, k_prime, v)


class FastAttention(nn.Module):
    """FAVOR+ kernel with its projection ω held as a buffer (saved in ``state_dict``).

    In training the projection is redrawn every ``redraw_interval`` forward calls (0: never), as the
    paper does to avoid overfitting to one draw; in eval it is frozen, so predictions are
    deterministic, and a loaded checkpoint predicts with exactly the saved ω.
    """

    def __init__(
        self,
        dim_heads: int,
        nb_features: int | None = None,
        ortho_scaling: int = 0,
        redraw_interval: int = 1000,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        self.dim_heads = dim_heads
        self.nb_features = nb_features or default_nb_features(dim_heads)
        self.ortho_scaling = ortho_scaling
        self.redraw_interval = redraw_interval
        self.eps = eps
        self.calls_since_redraw = 0  # plain attribute: a training-time counter, not model state
        self.register_buffer("projection_matrix", self._draw())

    def _draw(self) -> torch.Tensor:
        return orthogonal_gaussian_matrix(self.nb_features, self.dim_heads, self.ortho_scaling)

    @torch.no_grad()
    def redraw_projection(self) -> None:
        """Draw a fresh ω (from the global RNG, so seeded runs repeat) in place."""
        self.projection_matrix.copy_(self._draw())
        self.calls_since_redraw = 0

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(B, H, L, Dh) q, k, v -> (B, H, L, Dh)."""
        if self.training and self.redraw_interval > 0:
            if self.calls_since_redraw >= self.redraw_interval:
                self.redraw_projection()
            self.calls_since_redraw += 1
        return favor_attention(q, k, v, self.projection_matrix, self.eps)

    def extra_repr(self) -> str:
        return (
            f"dim_heads={self.dim_heads}, nb_features={self.nb_features}, "
            f"redraw_interval={self.redraw_interval}"
        )


class FavorSelfAttention(nn.Module):
    """Multi-head self-attention with FAVOR+ in place of softmax: (B, L, D) -> (B, L, D)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        nb_features: int | None = None,
        redraw_interval: int = 1000,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attn = FastAttention(self.head_dim, nb_features, redraw_interval=redraw_interval)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        # (B, L, 3D) -> (3, B, H, L, Dh)
        qkv = self.qkv(x).view(B, L, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = self.attn(qkv[0], qkv[1], qkv[2])  # (B, H, L, Dh)
        y = y.transpose(1, 2).reshape(B, L, D)  # (B, L, D)
        return self.dropout(self.out(y))


def exact_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact softmax attention (the quantity FAVOR+ estimates), for tests and benchmarks."""
    return F.scaled_dot_product_attention(q, k, v)
