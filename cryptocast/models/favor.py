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

from cryptocast.models.common import MultiHeadSelfAttention


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


_MIN_EXPONENT = -30.0  # e^-30 ≈ 1e-13 ≪ ε: clamping changes φ by < 1e-9 relative, and keeps
# exp from producing float32 denormals, which made CPU matmuls over the features ~5x slower.


def softmax_kernel(
    x: torch.Tensor, projection: torch.Tensor, is_query: bool, eps: float = 1e-4
) -> torch.Tensor:
    """Positive random features φ(x) = m^-½ (exp(ωᵀx′ − ‖x′‖²/2 − s) + ε), x′ = x·d^-¼.

    The stabiliser s (a max of ωᵀx′, detached from the gradient) keeps exp from overflowing for
    inputs with large norms; with ε = 0 it cancels in D⁻¹ Q′(K′ᵀV) because it is constant per query
    row (queries) or per head (keys), and with ε > 0 it sets how much ε smooths the output, so it
    is taken where the reference code takes it (see below). The work runs in float32 even under autocast: exp of bf16 logits loses too much.
    This is the readable reference; ``favor_attention`` computes the same thing fused.

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
        z = logits - diag  # (B, H, L, m)
        with torch.no_grad():
            # Taken on the raw projection ωᵀx′, before subtracting ‖x′‖²/2, as both references do:
            # per row for queries, per head over keys and features for keys. The choice sets how
            # strongly ε smooths the output (ε is added after the shift): taken after the
            # subtraction instead, the error against exact softmax at L=4096, d=64, m=256,
            # std-normal q, k was 3.2 instead of the reference's 0.82 (tests/test_favor.py).
            stab = logits.amax(dim=-1 if is_query else (-2, -1), keepdim=True)
        # m^-½ folded into the exponent: m^-½·exp(z) = exp(z − ½ ln m).
        z = (z - (stab + 0.5 * math.log(m))).clamp(min=_MIN_EXPONENT)
        feats = torch.exp(z) + eps / math.sqrt(m)
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


def _feature_exponent(
    x: torch.Tensor, w_aug: torch.Tensor, c: float, is_query: bool
) -> torch.Tensor:
    """exp(ωᵀx′ − ‖x′‖²/2 − s − ½ ln m) without ε, fused as one matmul plus in-place passes.

    ‖x′‖² rides along as an extra column of x (and −c = −1/(2√d) as one of ω), so the matmul yields
    the whole exponent z = ωᵀx′ − c‖x‖². The stabiliser s is the max of the raw projection ωᵀx′,
    per row for queries and per head for keys, as in ``softmax_kernel``; since c‖x‖² is constant
    along a row, max ωᵀx′ over a row is max z over that row plus c‖x‖², so no second (L × m) pass
    is needed. Every exponent stays ≤ 0 (no overflow) because ‖x′‖²/2 ≥ 0.
    """
    sq = x.pow(2).sum(dim=-1, keepdim=True)  # (B, H, L, 1) = ‖x‖²
    x_aug = torch.cat([x, sq], dim=-1)  # (B, H, L, d+1)
    z = torch.matmul(x_aug, w_aug.t())  # (B, H, L, m)
    stab = z.detach().amax(dim=-1, keepdim=True) + c * sq.detach()  # (B, H, L, 1) row max of ωᵀx′
    if not is_query:
        stab = stab.amax(dim=-2, keepdim=True)  # (B, H, 1, 1)
    return z.sub_(stab + 0.5 * math.log(w_aug.shape[0])).clamp_(min=_MIN_EXPONENT).exp_()


class _FavorFunction(torch.autograd.Function):
    """Fused non-causal FAVOR+ with a hand-written backward.

    Same maths as ``softmax_kernel`` + ``linear_attention``, arranged so every (L × m) tensor is
    touched as few times as possible: φ = E + ε′ (ε′ = ε·m^-½) is never materialised, its ε′ part
    enters as rank-one corrections of the small (m × d) products; the denominator rides as a column
    of ones appended to V; the gradient of ‖x′‖² rides as a column of ones appended to ω.
    """

    @staticmethod
    def forward(ctx, q, k, v, projection, eps):
        dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        d = q.shape[-1]
        m = projection.shape[0]
        c = 0.5 / math.sqrt(d)
        proj = projection.to(dtype) * d**-0.25  # ω scaled by d^-¼, (m, d)
        w_aug = torch.cat([proj, proj.new_full((m, 1), -c)], dim=-1)  # (m, d+1)
        eq = _feature_exponent(q, w_aug, c, is_query=True)  # (B, H, L, m)
        ek = _feature_exponent(k, w_aug, c, is_query=False)  # (B, H, S, m)
        e_ = eps / math.sqrt(m)
        v_aug = torch.cat([v, v.new_ones(v.shape[:-1] + (1,))], dim=-1)  # (B, H, S, dv+1)
        # K′ᵀ[V | 1] = Eₖᵀ[V | 1] + ε′ 1 (1ᵀ[V | 1]): (B, H, m, dv+1); last column is K′ᵀ1.
        kv = torch.matmul(ek.transpose(-2, -1), v_aug)
        kv += e_ * v_aug.sum(dim=-2, keepdim=True)
        # Q′(K′ᵀ[V | 1]) = E_q kv + ε′ 1 (1ᵀ kv): (B, H, L, dv+1); last column is D.
        out_aug = torch.matmul(eq, kv)
        out_aug += e_ * kv.sum(dim=-2, keepdim=True)
        denom = out_aug[..., -1:]  # (B, H, L, 1)
        out = out_aug[..., :-1] / denom  # (B, H, L, dv)
        ctx.save_for_backward(q, k, v_aug, w_aug, eq, ek, kv, out, denom)
        ctx.consts = (e_, c)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v_aug, w_aug, eq, ek, kv, out, denom = ctx.saved_tensors
        e_, c = ctx.consts
        g = grad_out.to(out.dtype)
        # O = N / D: dN = G / D, dD = −Σ(G ⊙ O) / D, stacked as (B, H, L, dv+1).
        g_aug = torch.cat([g, -(g * out).sum(dim=-1, keepdim=True)], dim=-1) / denom
        # Through out_aug = Q′ kv.
        d_eq = torch.matmul(g_aug, kv.transpose(-2, -1))  # dQ′: (B, H, L, m)
        d_kv = torch.matmul(eq.transpose(-2, -1), g_aug)  # (B, H, m, dv+1)
        d_kv += e_ * g_aug.sum(dim=-2, keepdim=True)
        # Through kv = K′ᵀ[V | 1].
        d_ek = torch.matmul(v_aug, d_kv.transpose(-2, -1))  # dK′: (B, H, S, m)
        d_v = torch.matmul(ek, d_kv[..., :-1])  # (B, H, S, dv)
        d_v += e_ * d_kv[..., :-1].sum(dim=-2, keepdim=True)
        # Through E = exp(z): dz = dE ⊙ E; z = [x | ‖x‖²] w_augᵀ (stabiliser detached).
        grads = []
        for d_e, e, x in ((d_eq, eq, q), (d_ek, ek, k)):
            dz = d_e.mul_(e)
            # dz @ [ω | 1] gives dz ω and Σⱼ dzⱼ (the ‖x‖² path) in one matmul.
            w_grad = torch.cat([w_aug[:, :-1], w_aug.new_ones(w_aug.shape[0], 1)], dim=-1)
            t = torch.matmul(dz, w_grad)  # (B, H, L, d+1)
            grads.append(t[..., :-1] - (2 * c) * x * t[..., -1:])
        d_q, d_k = grads
        return d_q, d_k, d_v, None, None


def favor_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, projection: torch.Tensor, eps: float = 1e-4
) -> torch.Tensor:
    """FAVOR+ approximation of ``scaled_dot_product_attention(q, k, v)``.

    Args:
        q: (B, H, L, d) queries.
        k: (B, H, S, d) keys.
        v: (B, H, S, dv) values.
        projection: (m, d) random projection ω (no gradient flows to it).
        eps: feature floor ε.

    Returns:
        (B, H, L, dv) in ``q``'s dtype; computed in float32 (float64 for float64 inputs) even
        under autocast.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        out = _FavorFunction.apply(q, k, v, projection.detach(), eps)
    return out.to(q.dtype)


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


class FavorSelfAttention(MultiHeadSelfAttention):
    """Multi-head self-attention with FAVOR+ in place of softmax: (B, L, D) -> (B, L, D)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        nb_features: int | None = None,
        redraw_interval: int = 1000,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(d_model, n_heads, dropout)
        self.attn = FastAttention(self.head_dim, nb_features, redraw_interval=redraw_interval)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.attn(q, k, v)  # (B, H, L, Dh)


def exact_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact softmax attention (the quantity FAVOR+ estimates), for tests and benchmarks."""
    return F.scaled_dot_product_attention(q, k, v)
