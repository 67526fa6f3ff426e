package io.kiln.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.DType;
import io.kiln.Float8;
import io.kiln.InvalidInputException;
import io.kiln.execution.llm.CpuLlamaRunner;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.model.safetensors.SafetensorsModel;
import io.kiln.model.safetensors.SafetensorsWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** 8-bit weight checkpoints: written by WeightQuantizer, read back dequantized by LinearWeights. */
class WeightQuantizerTest {
  @TempDir static Path dir;
  private static Path tiny;

  @BeforeAll
  static void writeTinyModel() {
    tiny = dir.resolve("tiny");
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"), 21, DType.F32, tiny, 1L << 30, fraction -> {});
  }

  @ParameterizedTest
  @EnumSource(WeightQuantizer.Format.class)
  void everyProjectionComesBackWithinHalfAStep(WeightQuantizer.Format format) throws Exception {
    Path out = dir.resolve("q-" + format.label());
    WeightQuantizer.quantize(tiny, format, out, fraction -> {});
    LlamaWeights original = LlamaWeights.load(tiny);
    LlamaWeights quantized = LlamaWeights.load(out);
    LlamaConfig c = original.config;
    for (int i = 0; i < c.numLayers(); i++) {
      LlamaWeights.Layer a = original.layers[i];
      LlamaWeights.Layer b = quantized.layers[i];
      check(a.wq, b.wq, c.queryDim(), c.hiddenSize(), format);
      check(a.wk, b.wk, c.kvDim(), c.hiddenSize(), format);
      check(a.wo, b.wo, c.hiddenSize(), c.queryDim(), format);
      check(a.wDown, b.wDown, c.hiddenSize(), c.intermediateSize(), format);
      assertArrayEquals(a.attentionNorm, b.attentionNorm, "norms are carried over as they were");
    }
    assertArrayEquals(original.embedding, quantized.embedding);
    try (SafetensorsModel st = SafetensorsModel.open(out)) {
      String q0 = LlamaTensors.layer(0).qProj();
      assertEquals(
          format == WeightQuantizer.Format.FP8 ? DType.F8E4M3 : DType.I8, st.tensor(q0).dtype());
      assertEquals(DType.F32, st.tensor(LlamaTensors.weightScale(q0)).dtype());
    }
    var q =
        new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
    assertEquals(
        format == WeightQuantizer.Format.FP8 ? "fp8" : "int8", q.get("quant_method").asText());
    assertTrue(Files.isRegularFile(out.resolve("generation_config.json")));
    assertThrows(
        InvalidInputException.class,
        () -> WeightQuantizer.quantize(out, format, dir.resolve("again-" + format), f -> {}));
  }

  /** The int8 codes a runner computes on are the checkpoint's codes, scales included. */
  @Test
  void int8CodesAreTheCheckpointCodes() {
    SplittableRandom rnd = new SplittableRandom(5);
    int out = 7;
    int in = 48;
    float[] w = new float[out * in];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian();
    }
    Arrays.fill(w, 3 * in, 4 * in, 0f); // a row of zeros keeps scale 1 and codes 0
    float[] scales = new float[out];
    byte[] codes = WeightQuantizer.int8Codes(w, out, in, scales);
    WeightQuantizer.Quantized expected =
        WeightQuantizer.quantizeRows(w, out, in, WeightQuantizer.Format.INT8);
    assertArrayEquals(expected.scales(), scales);
    for (int i = 0; i < codes.length; i++) {
      assertEquals(expected.codes()[i], codes[i], "code " + i);
    }
    assertEquals(1f, scales[3]);
    assertThrows(
        InvalidInputException.class, () -> WeightQuantizer.int8Codes(w, out, in + 1, scales));
  }

  /** Per element: INT8 within half a step of its row; FP8 within half an ulp of E4M3. */
  private static void check(float[] w, float[] q, int out, int in, WeightQuantizer.Format format) {
    for (int row = 0; row < out; row++) {
      float largest = 0;
      for (int col = 0; col < in; col++) {
        largest = Math.max(largest, Math.abs(w[row * in + col]));
      }
      float scale = largest / (format == WeightQuantizer.Format.INT8 ? 127f : Float8.MAX_E4M3);
      for (int col = 0; col < in; col++) {
        float x = w[row * in + col];
        float bound =
            format == WeightQuantizer.Format.INT8
                ? scale / 2 * 1.0001f
                : Math.abs(x) / 16 + scale * 0x1p-10f;
        assertTrue(
            Math.abs(q[row * in + col] - x) <= bound + 1e-9f,
            "row " + row + " col " + col + ": " + x + " came back as " + q[row * in + col]);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(WeightQuantizer.Format.class)
  void publicLlamaTokensAgreeWhileTheMarginExceedsTheLogitError(WeightQuantizer.Format format) {
    Path quantized = dir.resolve("public-" + format.label());
    WeightQuantizer.quantize(PublicLlama.directory(), format, quantized, fraction -> {});
    int compared = 0;
    try (CpuLlamaRunner reference =
            new CpuLlamaRunner(
                LlamaWeights.load(PublicLlama.directory()), KvPoolSpec.ofUsableBlocks(16, 16), 2);
        CpuLlamaRunner eightBit =
            new CpuLlamaRunner(
                LlamaWeights.load(quantized), KvPoolSpec.ofUsableBlocks(16, 16), 2)) {
      for (PublicLlama.Case c : PublicLlama.cases()) {
        // Teacher-forced on the reference tokens: each step's logits from both models.
        List<float[]> want = logits(reference, c);
        List<float[]> got = logits(eightBit, c);
        for (int step = 0; step < c.greedyNewTokens().length; step++) {
          float[] w = want.get(step);
          float error = 0;
          for (int v = 0; v < w.length; v++) {
            error = Math.max(error, Math.abs(w[v] - got.get(step)[v]));
          }
          if (margin(w) <= error) {
            break; // from here on the reference itself does not say which token is right
          }
          assertEquals(c.greedyNewTokens()[step], argmax(got.get(step)), format + " step " + step);
          compared++;
        }
      }
    }
    // The random model's top-2 margins are small; FP8's three mantissa bits leave few of its steps
    // decidable (its logit error is about 3x INT8's), so fewer are compared.
    int needed = format == WeightQuantizer.Format.INT8 ? 20 : 3;
    assertTrue(compared >= needed, "only " + compared + " steps had a margin above the error");
  }

  private static List<float[]> logits(CpuLlamaRunner runner, PublicLlama.Case c) {
    int[] prompt = c.prompt();
    int[] tokens = c.greedyNewTokens();
    int length = prompt.length + tokens.length;
    int[] table = new int[(length + 15) / 16];
    for (int i = 0; i < table.length; i++) {
      table[i] = 1 + i;
    }
    List<float[]> out = new ArrayList<>();
    out.add(runner.forward(List.of(new SequenceChunk(1, prompt, 0, table, true)))[0]);
    for (int step = 0; step + 1 < tokens.length; step++) {
      out.add(
          runner
              .forward(
                  List.of(
                      new SequenceChunk(
                          1, new int[] {tokens[step]}, prompt.length + step, table, true)))[0]);
    }
    return out;
  }

  private static float margin(float[] logits) {
    float first = Float.NEGATIVE_INFINITY;
    float second = Float.NEGATIVE_INFINITY;
    for (float v : logits) {
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) {
        second = v;
      }
    }
    return first - second;
  }

  private static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }

  @ParameterizedTest
  @EnumSource(WeightQuantizer.Format.class)
  void quantizingOnLoadEqualsReadingTheCheckpoint(WeightQuantizer.Format format) {
    Path checkpoint = dir.resolve("onload-" + format.label());
    WeightQuantizer.quantize(tiny, format, checkpoint, fraction -> {});
    LlamaWeights read = LlamaWeights.load(checkpoint);
    LlamaWeights onLoad = LlamaWeights.load(tiny);
    WeightQuantizer.quantizeInPlace(onLoad, format);
    for (int i = 0; i < read.layers.length; i++) {
      assertArrayEquals(read.layers[i].wq, onLoad.layers[i].wq, "layer " + i + " q");
      assertArrayEquals(read.layers[i].wGate, onLoad.layers[i].wGate, "layer " + i + " gate");
      assertArrayEquals(read.layers[i].wDown, onLoad.layers[i].wDown, "layer " + i + " down");
    }
  }

  @Test
  void huggingFaceFp8WithOneScaleOrBlockScalesLoads() throws Exception {
    LlamaConfig c = LlamaConfig.load(tiny);
    String name = LlamaTensors.layer(0).qProj();
    int out = c.queryDim();
    int in = c.hiddenSize();
    float[] codes = new float[out * in];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = Float8.e4m3ToFloat((byte) (i % 0x7e)); // every finite positive code, repeated
    }
    Path perTensor = dir.resolve("fp8-per-tensor.safetensors");
    try (SafetensorsWriter w =
        new SafetensorsWriter(
            perTensor,
            List.of(
                new SafetensorsWriter.Entry(name, DType.F8E4M3, new long[] {out, in}),
                new SafetensorsWriter.Entry(
                    LlamaTensors.weightScale(name), DType.F32, new long[] {})),
            Map.of())) {
      w.write(codes, codes.length);
      w.write(new float[] {0.25f}, 1);
    }
    try (SafetensorsModel st = SafetensorsModel.open(perTensor)) {
      float[] read = LinearWeights.read(st, name, out, in);
      for (int i = 0; i < codes.length; i++) {
        assertEquals(codes[i] * 0.25f, read[i], 0, "element " + i);
      }
    }
    int block = 32;
    int rows = (out + block - 1) / block;
    int cols = (in + block - 1) / block;
    float[] blockScales = new float[rows * cols];
    for (int i = 0; i < blockScales.length; i++) {
      blockScales[i] = 0.5f + i;
    }
    Path blocks = dir.resolve("fp8-blocks.safetensors");
    try (SafetensorsWriter w =
        new SafetensorsWriter(
            blocks,
            List.of(
                new SafetensorsWriter.Entry(name, DType.F8E4M3, new long[] {out, in}),
                new SafetensorsWriter.Entry(
                    LlamaTensors.weightBlockScale(name), DType.F32, new long[] {rows, cols})),
            Map.of())) {
      w.write(codes, codes.length);
      w.write(blockScales, blockScales.length);
    }
    try (SafetensorsModel st = SafetensorsModel.open(blocks)) {
      float[] read = LinearWeights.read(st, name, out, in);
      for (int r = 0; r < out; r++) {
        for (int k = 0; k < in; k++) {
          float expected = codes[r * in + k] * blockScales[(r / block) * cols + k / block];
          assertEquals(expected, read[r * in + k], 0, "element " + r + "," + k);
        }
      }
    }
  }
}
