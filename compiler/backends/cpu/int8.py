"""The fixed-layout int8 GEMM: the fallback of the int8 path.

Integer Conv / MatMul normally go through `tensorized.py` (the loop mapping from
`tensorize(op_nest, x86_avx2_dot())`). When the tensorizer refuses a node (e.g. a conv with fewer output
channels than the intrinsic has lanes; the reason is kept as a comment in the C), or for MatMul batch
broadcasting the mapped emitter does not handle, the node uses this GEMM:
int32 C[M x N] = A[M x K] · B[K x N] over int16 operands with the zero points subtracted (exact for any
int8 / uint8 data), B packed in panels of 16 columns by pairs of k, AVX2 `vpmaddwd` (a portable C loop
without AVX2).
"""

from __future__ import annotations

from dataclasses import dataclass

from .cgen import KernelContext
from .helpers import HELPERS

MR = 6  # rows of A per register tile: 6 x 2 vector accumulators + 2 B vectors + 1 A broadcast = 15 of 16 ymm


@dataclass(frozen=True)
class IGemmLayout:
    """How the int8 GEMM is tiled: `mr` rows x `nr` columns per register tile, `kg` products per lane."""

    mr: int
    nr: int
    kg: int
    kp: int           # K rounded up to a multiple of kg
    mapping: str      # the tensorizer's mapping, printed, or why the fixed layout was used

    def panels(self, n: int) -> int:
        return (n + self.nr - 1) // self.nr


def igemm_layout(k: KernelContext, m: int, n: int, kd: int) -> IGemmLayout:
    """The tile of the fixed-layout int8 GEMM for m x n x kd."""
    lanes, kg, mapping = 8, 2, "fixed layout (AVX2 vpmaddwd: 8 int32 lanes x 2 int16 products)"
    kp = (kd + kg - 1) // kg * kg
    return IGemmLayout(mr=MR, nr=2 * lanes, kg=kg, kp=max(kp, kg), mapping=mapping)


IGEMM = r"""
/* int32 C[i][j] (row stride ldc) = sum_k Ap[i][k] * B[k][j] over int16 operands; Ap[i][0..Kp), B packed by
   tw_ipack_b / tw_iim2col_packed in panels of 16 columns x pairs of k. */
static void tw_igemm(int64_t M, int64_t N, int64_t Kp, const int16_t *Ap, const int16_t *Bp, int32_t *C,
                     int64_t ldc) {
  const int64_t np = (N + 15) / 16, mb = (M + 5) / 6;
  #pragma omp parallel for collapse(2) schedule(static) if (M * N * Kp > 262144)
  for (int64_t jp = 0; jp < np; jp++)
    for (int64_t ib = 0; ib < mb; ib++) {
      const int64_t i0 = ib * 6, j0 = jp * 16;
      const int64_t rows = M - i0 < 6 ? M - i0 : 6, cols = N - j0 < 16 ? N - j0 : 16;
      const int16_t *a[6];
      for (int r = 0; r < 6; r++) a[r] = Ap + (i0 + (r < rows ? r : 0)) * Kp;
      const int16_t *bp = Bp + jp * Kp * 16;
      int32_t out[6][16];
#ifdef __AVX2__
      __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
      __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
      for (int64_t k = 0; k < Kp; k += 2) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + k * 16));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + k * 16 + 16));
        __m256i v;
#define TW_ROW(r, lo, hi) v = _mm256_set1_epi32(*(const int32_t *)(a[r] + k)); \
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(v, b0)); hi = _mm256_add_epi32(hi, _mm256_madd_epi16(v, b1));
        TW_ROW(0, c00, c01) TW_ROW(1, c10, c11) TW_ROW(2, c20, c21)
        TW_ROW(3, c30, c31) TW_ROW(4, c40, c41) TW_ROW(5, c50, c51)
#undef TW_ROW
      }
      _mm256_storeu_si256((__m256i *)out[0], c00); _mm256_storeu_si256((__m256i *)(out[0] + 8), c01);
      _mm256_storeu_si256((__m256i *)out[1], c10); _mm256_storeu_si256((__m256i *)(out[1] + 8), c11);
      _mm256_storeu_si256((__m256i *)out[2], c20); _mm256_storeu_si256((__m256i *)(out[2] + 8), c21);
      _mm256_storeu_si256((__m256i *)out[3], c30); _mm256_storeu_si256((__m256i *)(out[3] + 8), c31);
      _mm256_storeu_si256((__m256i *)out[4], c40); _mm256_storeu_si256((__m256i *)(out[4] + 8), c41);
      _mm256_storeu_si256((__m256i *)out[5], c50); _mm256_storeu_si256((__m256i *)(out[5] + 8), c51);
#else
      for (int r = 0; r < 6; r++)
        for (int c = 0; c < 16; c++) out[r][c] = 0;
      for (int64_t k = 0; k < Kp; k += 2)
        for (int r = 0; r < 6; r++)
          for (int c = 0; c < 16; c++)
            out[r][c] += (int32_t)a[r][k] * bp[(k / 2) * 32 + c * 2]
                         + (int32_t)a[r][k + 1] * bp[(k / 2) * 32 + c * 2 + 1];
#endif
      for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) C[(i0 + r) * ldc + j0 + c] = out[r][c];
    }
}
"""

HELPERS["igemm"] = IGEMM
