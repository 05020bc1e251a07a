"""Hand-written C helpers that kernels include by name (`KernelContext.need("sgemm")`).

- `sgemm`: float32 C = A·B with B packed in panels of 16 columns (`tw_pack_b`, or `tw_im2col_packed`
  straight from an NCHW image), a 6x16 register block of AVX2 FMAs (a portable loop without AVX2),
  OpenMP over (panel, row block).
- `igemm`: the int8 path, int32 C = A·B over int16 operands (zero points already subtracted) with B packed
  in panels of 16 columns by pairs of k; the register block comes from the tensorized intrinsic (see
  `int8.py`), emitted there. Here only the packing routines live.
"""

from __future__ import annotations

SGEMM = r"""
#ifdef __AVX2__
#include <immintrin.h>
#endif
#define TW_NR 16
#define TW_MR 6
/* Bp[jp][k][16] = B[k][jp*16 + c] (zero past N); B element (k, j) at B[k*brs + j*bcs]. */
static void tw_pack_b(const float *B, int64_t brs, int64_t bcs, int64_t K, int64_t N, float *Bp) {
  const int64_t np = (N + TW_NR - 1) / TW_NR;
  #pragma omp parallel for if (K * N > 65536)
  for (int64_t jp = 0; jp < np; jp++)
    for (int64_t k = 0; k < K; k++)
      for (int64_t c = 0; c < TW_NR; c++) {
        const int64_t j = jp * TW_NR + c;
        Bp[(jp * K + k) * TW_NR + c] = j < N ? B[k * brs + j * bcs] : 0.0f;
      }
}

/* im2col of one image x[C][H][W] for a conv with kernel RxS, written straight into packed panels:
   column j = (oh, ow), row k = (c, r, s). */
static void tw_im2col_packed(const float *x, int64_t C, int64_t H, int64_t W, int64_t R, int64_t S,
                             int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                             int64_t dh, int64_t dw, float *Bp) {
  const int64_t N = OH * OW, K = C * R * S, np = (N + TW_NR - 1) / TW_NR;
  #pragma omp parallel for if (K * N > 65536)
  for (int64_t jp = 0; jp < np; jp++) {
    int64_t ih0[TW_NR], iw0[TW_NR]; int valid[TW_NR];
    for (int c = 0; c < TW_NR; c++) {
      const int64_t j = jp * TW_NR + c;
      valid[c] = j < N;
      ih0[c] = valid[c] ? (j / OW) * sh - ph : 0;
      iw0[c] = valid[c] ? (j % OW) * sw - pw : 0;
    }
    float *dst = Bp + jp * K * TW_NR;
    /* split the 16 columns into runs within one output row: each run of each (ch, r, s) row is a
       strided copy (a memcpy at unit stride) when it stays inside the image */
    int seg[TW_NR + 1], nseg = 0;
    for (int c = 0; c < TW_NR; c++)
      if (c == 0 || ih0[c] != ih0[c - 1] || !valid[c] || !valid[c - 1]) seg[nseg++] = c;
    seg[nseg] = TW_NR;
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t r = 0; r < R; r++)
        for (int64_t s = 0; s < S; s++) {
          const float *src = x + ch * H * W;
          for (int q = 0; q < nseg; q++) {
            const int c0 = seg[q], c1 = seg[q + 1];
            const int64_t ih = ih0[c0] + r * dh, iw = iw0[c0] + s * dw, iw_last = iw0[c1 - 1] + s * dw;
            if (valid[c0] && ih >= 0 && ih < H && iw >= 0 && iw_last < W) {
              const float *row = src + ih * W + iw;
              if (sw == 1) memcpy(dst + c0, row, (size_t)(c1 - c0) * sizeof(float));
              else for (int c = c0; c < c1; c++) dst[c] = row[(c - c0) * sw];
              continue;
            }
            for (int c = c0; c < c1; c++) {
              const int64_t ihc = ih0[c] + r * dh, iwc = iw0[c] + s * dw;
              dst[c] = (valid[c] && ihc >= 0 && ihc < H && iwc >= 0 && iwc < W) ? src[ihc * W + iwc] : 0.0f;
            }
          }
          dst += TW_NR;
        }
  }
}

/* C[i][j] (row stride ldc) = sum_k A(i, k) * B(k, j); A(i, k) = A[i*ars + k*acs]; B packed by tw_pack_b. */
static void tw_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars, int64_t acs,
                     const float *Bp, float *C, int64_t ldc) {
  const int64_t np = (N + TW_NR - 1) / TW_NR, mb = (M + TW_MR - 1) / TW_MR;
  #pragma omp parallel for collapse(2) schedule(static) if (M * N * K > 262144)
  for (int64_t jp = 0; jp < np; jp++)
    for (int64_t ib = 0; ib < mb; ib++) {
      const int64_t i0 = ib * TW_MR, j0 = jp * TW_NR;
      const int64_t rows = M - i0 < TW_MR ? M - i0 : TW_MR, cols = N - j0 < TW_NR ? N - j0 : TW_NR;
      const float *a[TW_MR];
      for (int r = 0; r < TW_MR; r++) a[r] = A + (i0 + (r < rows ? r : 0)) * ars;
      const float *bp = Bp + jp * K * TW_NR;
      float out[TW_MR][TW_NR];
#if defined(__AVX2__) && defined(__FMA__)
      __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
      __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
      for (int64_t k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(bp + k * TW_NR), b1 = _mm256_loadu_ps(bp + k * TW_NR + 8);
        const int64_t ka = k * acs;
        __m256 v;
        v = _mm256_broadcast_ss(a[0] + ka); c00 = _mm256_fmadd_ps(v, b0, c00); c01 = _mm256_fmadd_ps(v, b1, c01);
        v = _mm256_broadcast_ss(a[1] + ka); c10 = _mm256_fmadd_ps(v, b0, c10); c11 = _mm256_fmadd_ps(v, b1, c11);
        v = _mm256_broadcast_ss(a[2] + ka); c20 = _mm256_fmadd_ps(v, b0, c20); c21 = _mm256_fmadd_ps(v, b1, c21);
        v = _mm256_broadcast_ss(a[3] + ka); c30 = _mm256_fmadd_ps(v, b0, c30); c31 = _mm256_fmadd_ps(v, b1, c31);
        v = _mm256_broadcast_ss(a[4] + ka); c40 = _mm256_fmadd_ps(v, b0, c40); c41 = _mm256_fmadd_ps(v, b1, c41);
        v = _mm256_broadcast_ss(a[5] + ka); c50 = _mm256_fmadd_ps(v, b0, c50); c51 = _mm256_fmadd_ps(v, b1, c51);
      }
      _mm256_storeu_ps(out[0], c00); _mm256_storeu_ps(out[0] + 8, c01);
      _mm256_storeu_ps(out[1], c10); _mm256_storeu_ps(out[1] + 8, c11);
      _mm256_storeu_ps(out[2], c20); _mm256_storeu_ps(out[2] + 8, c21);
      _mm256_storeu_ps(out[3], c30); _mm256_storeu_ps(out[3] + 8, c31);
      _mm256_storeu_ps(out[4], c40); _mm256_storeu_ps(out[4] + 8, c41);
      _mm256_storeu_ps(out[5], c50); _mm256_storeu_ps(out[5] + 8, c51);
#else
      for (int r = 0; r < TW_MR; r++)
        for (int c = 0; c < TW_NR; c++) out[r][c] = 0.0f;
      for (int64_t k = 0; k < K; k++)
        for (int r = 0; r < TW_MR; r++) {
          const float v = a[r][k * acs];
          for (int c = 0; c < TW_NR; c++) out[r][c] += v * bp[k * TW_NR + c];
        }
#endif
      for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) C[(i0 + r) * ldc + j0 + c] = out[r][c];
    }
}
"""

IPACK = r"""
#ifdef __AVX2__
#include <immintrin.h>
#endif
/* int8 path operands: int16 values with the zero point subtracted, k padded to a multiple of KG.
   A: Ap[i][kp] (kp = K rounded up to KG); B: Bp[jp][k/KG][NR][KG] (panels of NR columns). */
static void tw_ipack_a(const void *A, int a_signed, int64_t ars, int64_t acs, int32_t zp, const int32_t *zps,
                       int64_t M, int64_t K, int64_t Kp, int16_t *Ap) {
  for (int64_t i = 0; i < M; i++) {
    const int32_t z = zps ? zps[i] : zp;
    for (int64_t k = 0; k < Kp; k++) {
      int32_t v = 0;
      if (k < K) {
        const int64_t at = i * ars + k * acs;
        v = (a_signed ? (int32_t)((const int8_t *)A)[at] : (int32_t)((const uint8_t *)A)[at]) - z;
      }
      Ap[i * Kp + k] = (int16_t)v;
    }
  }
}

static void tw_ipack_b(const void *B, int b_signed, int64_t brs, int64_t bcs, const int32_t *zps, int32_t zp,
                       int64_t K, int64_t N, int64_t Kp, int NR, int KG, int16_t *Bp) {
  const int64_t np = (N + NR - 1) / NR;
  #pragma omp parallel for if (K * N > 65536)
  for (int64_t jp = 0; jp < np; jp++)
    for (int64_t k = 0; k < Kp; k++)
      for (int64_t c = 0; c < NR; c++) {
        const int64_t j = jp * NR + c;
        int32_t v = 0;
        if (j < N && k < K) {
          const int64_t at = k * brs + j * bcs;
          v = (b_signed ? (int32_t)((const int8_t *)B)[at] : (int32_t)((const uint8_t *)B)[at])
              - (zps ? zps[j] : zp);
        }
        Bp[((jp * (Kp / KG) + k / KG) * NR + c) * KG + k % KG] = (int16_t)v;
      }
}

/* im2col of one int8/uint8 image into the packed int16 B layout (padding reads the zero point, so it
   contributes zero after the subtraction). */
static void tw_iim2col_packed(const void *x, int x_signed, int32_t zp, int64_t C, int64_t H, int64_t W,
                              int64_t R, int64_t S, int64_t OH, int64_t OW, int64_t sh, int64_t sw,
                              int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t Kp, int NR, int KG,
                              int16_t *Bp) {
  const int64_t N = OH * OW, K = C * R * S, np = (N + NR - 1) / NR;
  #pragma omp parallel for if (K * N > 65536)
  for (int64_t jp = 0; jp < np; jp++) {
    int64_t ih0[64], iw0[64]; int valid[64];
    for (int c = 0; c < NR; c++) {
      const int64_t j = jp * NR + c;
      valid[c] = j < N;
      ih0[c] = valid[c] ? (j / OW) * sh - ph : 0;
      iw0[c] = valid[c] ? (j % OW) * sw - pw : 0;
    }
    int16_t *panel = Bp + jp * (Kp / KG) * NR * KG;
    for (int64_t k = 0; k < Kp; k++) {
      const int64_t ch = k / (R * S), r = (k / S) % R, s = k % S;
      int16_t *dst = panel + (k / KG) * NR * KG + k % KG;
      for (int c = 0; c < NR; c++) {
        int32_t v = 0;
        const int64_t ih = ih0[c] + r * dh, iw = iw0[c] + s * dw;
        if (k < K && valid[c] && ih >= 0 && ih < H && iw >= 0 && iw < W) {
          const int64_t at = (ch * H + ih) * W + iw;
          v = (x_signed ? (int32_t)((const int8_t *)x)[at] : (int32_t)((const uint8_t *)x)[at]) - zp;
        }
        dst[c * KG] = (int16_t)v;
      }
    }
  }
}

/* ONNX Runtime's requantization: float(acc) * scale, round half to even, add the zero point, saturate. */
static inline int32_t tw_requant(int32_t acc, float scale, int32_t zp, int32_t lo, int32_t hi) {
  float v = rintf((float)acc * scale) + (float)zp;
  v = v < (float)lo ? (float)lo : (v > (float)hi ? (float)hi : v);
  return (int32_t)v;
}
"""

HELPERS: dict[str, str] = {"sgemm": SGEMM, "ipack": IPACK}


def helper_source(name: str) -> str:
    """The C text of helper `name`; `igemm_mapped_<lanes>_<kg>` is generated for the tensorized tile."""
    if name.startswith("igemm_mapped_"):
        from .tensorized import igemm_mapped_source

        lanes, kg = (int(v) for v in name.rsplit("_", 2)[1:])
        return igemm_mapped_source(lanes, kg)
    return HELPERS[name]


def helper_order(name: str) -> tuple[int, str]:
    return (list(HELPERS).index(name) if name in HELPERS else len(HELPERS), name)
