package io.kiln.execution.llm;

/**
 * A weight matrix {@code [out][in]} regrouped for {@link CpuMath#matmul}: the outputs are cut into
 * tiles of {@code tileWidth} columns, and for each tile and input index one small array holds that
 * input's weights to the tile's outputs. Each such array is indexed from 0 like the accumulator it
 * feeds, which is the loop shape the JIT compiles to SIMD.
 */
final class PackedMatrix {
  final int in;
  final int out;
  final int tileWidth;
  final int tiles;
  final float[][] rows; // [tile * in + i][column within the tile]

  private PackedMatrix(int in, int out, int tileWidth) {
    this.in = in;
    this.out = out;
    this.tileWidth = tileWidth;
    this.tiles = (out + tileWidth - 1) / tileWidth;
    this.rows = new float[tiles * in][];
  }

  /** Packs row-major {@code w[out][in]} (Hugging Face's Linear layout). */
  static PackedMatrix pack(float[] w, int out, int in, int tileWidth) {
    PackedMatrix m = new PackedMatrix(in, out, Math.min(tileWidth, out));
    for (int tile = 0; tile < m.tiles; tile++) {
      int from = tile * m.tileWidth;
      int width = Math.min(out, from + m.tileWidth) - from;
      for (int i = 0; i < in; i++) {
        float[] row = new float[width];
        for (int j = 0; j < width; j++) {
          row[j] = w[(from + j) * in + i];
        }
        m.rows[tile * in + i] = row;
      }
    }
    return m;
  }

  /**
   * The widest tile (512, 256 or 128 columns) that still gives every thread two tiles: a pass over
   * a wider tile does more work per call of its short inner loops, and 512 columns of accumulators
   * for a task's 16 tokens still fit in L1.
   */
  static int tileWidthFor(int out, int threads) {
    for (int width = 512; width > 128; width /= 2) {
      if ((out + width - 1) / width >= 2 * threads) {
        return width;
      }
    }
    return 128;
  }
}
