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

  /** Wide tiles stream best; narrower ones keep every thread busy on small matrices. */
  static int tileWidthFor(int out, int threads) {
    return out >= 256 * 2 * threads ? 256 : 128;
  }
}
